"""``python -m attr_recovery.export_decoder``: the command line `attr_recovery.cli.export_decoder`, kept at
its first path."""
from attr_recovery.cli.export_decoder import run

if __name__ == "__main__":
    run()
