"""Figures of attribute significance and counterfactual explanations (PNG, Matplotlib Agg)."""

import numpy as np

from interp_fr.common import plotting


def _save(fig, path):
    return plotting.save_figure(fig, path, tight=True)


def _display(image):
    x = np.asarray(image)
    if x.dtype != np.uint8:
        x = np.clip((x.astype(np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return x


def significance_chart(result, path, title=None):
    """Bar chart of `attribute_significance.compute_significance` output.

    Left: sensitivity (cosine drop per calibrated unit, ranked); right:
    recoverability through the decoder and the linear probe R^2.
    """
    names = list(result["names"])
    attrs = result["attributes"]
    k = len(names)
    fig, axes = plotting.pyplot().subplots(1, 2, figsize=(11, 0.32 * k + 1.6), sharey=True)
    y = np.arange(k)[::-1]
    sens = np.array([attrs[n]["sensitivity"] for n in names])
    axes[0].barh(y, sens, color="tab:red")
    floor = np.array([attrs[n].get("noise_floor", np.nan) for n in names])
    if np.any(np.isfinite(floor)):
        axes[0].scatter(floor, y, marker="|", s=120, color="k",
                        label="noise floor (permuted attribute)")
        axes[0].legend(fontsize=7, loc="lower right")
    axes[0].set_xlabel("sensitivity: 1 - cos per 1-std change (all else fixed)")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([f"{n} ({attrs[n]['group']})" for n in names], fontsize=8)
    rec = np.array([attrs[n].get("recoverability", np.nan) for n in names])
    probe = np.array([attrs[n]["probe_r2"] for n in names])
    h = 0.4
    if np.any(np.isfinite(rec)):
        axes[1].barh(y + h / 2, np.nan_to_num(rec), h, color="tab:blue",
                     label="recoverability r(E(D(z)), E(x))")
    axes[1].barh(y - h / 2, np.clip(np.nan_to_num(probe), -0.2, 1), h, color="tab:gray",
                 label="linear probe R^2 from z")
    axes[1].axvline(0, color="k", lw=0.5)
    axes[1].set_xlim(-0.2, 1.05)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title or f"attribute significance ({result['reference_images']} faces, "
                 f"d = {result['feature_dim']})", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def explanation_figure(image1, image2, explanation, path, max_counterfactuals=6):
    """The pair, their decoded faces, counterfactual faces and contribution bars.

    Args:
      image1, image2: the real faces (uint8 or float in [-1, 1]).
      explanation: `counterfactual.explain_pair` output with ``images``.
      path: PNG file.
      max_counterfactuals: counterfactual faces shown (highest contribution first).
    """
    imgs = explanation.get("images", {})
    attrs = explanation["attributes"]
    shown = [n for n in explanation["order"] if n in imgs][:max_counterfactuals]
    cols = max(4, len(shown))
    fig = plotting.pyplot().figure(figsize=(1.7 * cols, 6.6))
    grid = fig.add_gridspec(3, cols, height_ratios=[1, 1, 1.3])
    top = [(image1, "face 1"), (image2, "face 2"),
           (imgs.get("decoded_1"), "decoded 1"), (imgs.get("decoded_2"), "decoded 2")]
    for i, (im, label) in enumerate(top):
        ax = fig.add_subplot(grid[0, i])
        ax.axis("off")
        if im is not None:
            ax.imshow(_display(im))
        ax.set_title(label, fontsize=8)
    for i, name in enumerate(shown):
        ax = fig.add_subplot(grid[1, i])
        ax.axis("off")
        ax.imshow(_display(imgs[name]))
        m = attrs[name]
        ax.set_title(f"{name}\n{m['flip_change']:+.2f} u -> cos "
                     f"{m.get('counterfactual_similarity', float('nan')):.3f}", fontsize=7)
    if not shown:
        ax = fig.add_subplot(grid[1, :])
        ax.axis("off")
        encoded = [n for n in explanation["order"] if attrs[n].get("encoded", True)]
        ax.text(0.5, 0.5, "no attribute R encodes above its noise floor\n("
                + ", ".join(encoded) + ")\nflips this decision within the largest "
                "change tried", ha="center", va="center", fontsize=9, wrap=True)
    ax = fig.add_subplot(grid[2, :])
    order = explanation["order"]
    contrib = [attrs[n]["contribution"] for n in order]
    ax.bar(np.arange(len(order)), contrib, color="tab:purple")
    ax.set_xticks(np.arange(len(order)))
    # "*": R does not encode the attribute above its noise floor (not moved).
    ax.set_xticklabels([n + ("" if attrs[n].get("encoded", True) else " *")
                        for n in order], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("contribution (1 / flip distance, normalised)\n* = not encoded by R",
                  fontsize=8)
    fig.suptitle(f"decision: {explanation['decision']} (cos {explanation['similarity']:.3f}"
                 f", threshold {explanation['threshold']:.3f})", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
