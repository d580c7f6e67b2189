"""``python -m attr_recovery.recon``: the command line `attr_recovery.cli.recon`, kept at
its first path."""
from attr_recovery.cli.recon import run

if __name__ == "__main__":
    run()
