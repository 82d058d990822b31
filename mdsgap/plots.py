"""Figures that more than one chapter draws."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np


def image_grid(images, captions=None, ncols: int = 6, size: float = 1.9, wrap: int = 22, title: str | None = None):
    """Images (uint8 (n, H, W, 3) or PIL) in a grid, each with its caption above it; returns the figure."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.45) * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(np.asarray(images[i]), interpolation="nearest")
        if captions is not None:
            ax.set_title("\n".join(textwrap.wrap(captions[i], wrap)), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curve(history):
    """Loss, gap (L2M) and cones against training step, from a training history table."""
    h = history
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    axes[0].plot(h.step[1:], h.train_loss[1:], label="train")
    axes[0].plot(h.step, h.val_loss, label="held-out")
    axes[0].set(xlabel="step", ylabel="contrastive loss", title="loss")
    axes[1].plot(h.step, h.L2M, color="k")
    axes[1].set(xlabel="step", ylabel="L2M", title="gap during training")
    axes[2].plot(h.step, h.cone_image, label="image")
    axes[2].plot(h.step, h.cone_text, label="text")
    axes[2].set(xlabel="step", ylabel="mean cosine", title="cone effect")
    axes[0].legend()
    axes[2].legend()
    fig.tight_layout()
    return fig


def gap_projections(embedded: dict, n_lines: int = 12):
    """One panel per model: both modalities on their top two principal components, a few pairs joined."""
    from mdsgap import gap

    fig, axes = plt.subplots(1, len(embedded), figsize=(4.6 * len(embedded), 4.2), squeeze=False)
    for ax, (label, (x, y)) in zip(axes.flat, embedded.items()):
        px, py = gap.project_2d(x, y)
        ax.scatter(*px.T, s=5, alpha=0.5, label="image")
        ax.scatter(*py.T, s=5, alpha=0.5, label="text")
        for i in range(min(n_lines, len(px))):
            ax.plot([px[i, 0], py[i, 0]], [px[i, 1], py[i, 1]], color="grey", lw=0.6)
        ax.set(title=label, xticks=[], yticks=[])
    axes.flat[0].legend(markerscale=4)
    fig.tight_layout()
    return fig


def cone_histograms(embedded: dict, seed: int = 0):
    """One panel per model: image-image, text-text and matched-pair cosine similarities."""
    from mdsgap import gap

    fig, axes = plt.subplots(1, len(embedded), figsize=(4.6 * len(embedded), 3.4), squeeze=False)
    bins = np.linspace(-1, 1, 81)
    for ax, (label, (x, y)) in zip(axes.flat, embedded.items()):
        matched = (gap.normalize(x) * gap.normalize(y)).sum(1).numpy()
        for values, name in ((gap.pairwise_cosines(x, seed=seed), "image-image"),
                             (gap.pairwise_cosines(y, seed=seed), "text-text"), (matched, "matched pair")):
            ax.hist(values, bins=bins, alpha=0.55, density=True, label=name)
        ax.set(title=label, xlabel="cosine similarity")
    axes.flat[0].legend()
    fig.tight_layout()
    return fig
