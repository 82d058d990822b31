"""Figures that more than one chapter draws."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np


def image_grid(images, captions=None, ncols: int = 6, size: float = 1.9, wrap: int = 22):
    """Images (uint8 (n, H, W, 3) or PIL) in a grid, each with its caption underneath; returns the figure."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.45) * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(np.asarray(images[i]), interpolation="nearest")
        if captions is not None:
            ax.set_title("\n".join(textwrap.wrap(captions[i], wrap)), fontsize=8)
    fig.tight_layout()
    return fig
