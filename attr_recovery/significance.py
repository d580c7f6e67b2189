"""``python -m attr_recovery.significance``: the command line `attr_recovery.cli.significance`, kept at
its first path."""
from attr_recovery.cli.significance import run

if __name__ == "__main__":
    run()
