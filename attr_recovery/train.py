"""``python -m attr_recovery.train``: the command line `attr_recovery.cli.train`, kept at
its first path."""
from attr_recovery.cli.train import run

if __name__ == "__main__":
    run()
