"""Learning curves of training runs: identity loss and batch accuracy per step."""
from interp_fr.common import plotting


def plot_learning_curves(histories, path, step_offsets=None):
    """Writes a two-panel PNG: 2 x CE (clean) and batch accuracy against the step.

    Args:
        histories: dict name -> list of (step, scalars dict), as
            `interp_fr.training.Trainer.history` keeps them.
        path: the PNG to write (atomically).
        step_offsets: optional dict name -> steps to add (e.g. a model trained
            from a pretrained base is drawn after the base's steps).

    Returns:
        ``path``.
    """
    plt = plotting.pyplot()

    offsets = step_offsets or {}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, history in histories.items():
        if not history:
            continue
        steps = [s + offsets.get(name, 0) for s, _ in history]
        ax_loss.plot(steps, [v["d_loss_real_id"] for _, v in history], label=name)
        ax_acc.plot(steps, [v["d_acc"] for _, v in history], label=name)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("2 x cross-entropy (clean batch)")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("batch accuracy")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return plotting.save_figure(fig, path, dpi=100)
