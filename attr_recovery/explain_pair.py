"""``python -m attr_recovery.explain_pair``: the command line `attr_recovery.cli.explain_pair`, kept at
its first path."""
from attr_recovery.cli.explain_pair import run

if __name__ == "__main__":
    run()
