"""``python -m attr_recovery.train_estimators``: the command line `attr_recovery.cli.train_estimators`, kept at
its first path."""
from attr_recovery.cli.train_estimators import run

if __name__ == "__main__":
    run()
