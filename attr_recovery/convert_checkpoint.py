"""``python -m attr_recovery.convert_checkpoint``: the command line
`attr_recovery.cli.convert_checkpoint`, kept at its first path."""
from attr_recovery.cli.convert_checkpoint import run

if __name__ == "__main__":
    run()
