"""Matplotlib without a display, and figures written atomically as PNG."""
from interp_fr.common.atomic_io import atomic_write


def pyplot():
    """Matplotlib's pyplot on the Agg backend (chosen when first plotting, so
    that importing a module never changes the backend of a user's session)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=110, tight=False):
    """Writes a Matplotlib figure as PNG atomically, closes it, returns ``path``."""
    plt = pyplot()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path
