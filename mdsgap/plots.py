"""The book's figures whose drawing would not fit a chapter's short cells: `image_grid` and `band` serve
several chapters, the others one chapter each."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from mdsgap.attribution.comparison import label


def image_grid(images, captions=None, ncols: int = 6, size: float = 1.9, wrap: int = 22, title: str | None = None):
    """Images (uint8 (n, H, W, 3) or PIL) in a grid, each with its caption above it; returns the figure."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    titles = ["\n".join(textwrap.wrap(c, wrap)) for c in captions] if captions is not None else [""] * n
    lines = max((t.count("\n") + 1 for t in titles if t), default=0)  # room above each image for its title
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.15 * lines + 0.1) * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(np.asarray(images[i]), interpolation="nearest")
        if titles[i]:
            ax.set_title(titles[i], fontsize=8)
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


def accuracy_heatmaps(acc, condition: str = "method", classes=("ImgD", "TxtD", "CMD")):
    """One heatmap per expected class: accuracy of every (method, tool), from `comparison.accuracy_table`."""
    import seaborn as sns

    d = acc[acc.condition == condition]
    fig, axes = plt.subplots(1, len(classes), figsize=(4.2 * len(classes), 3.8), sharey=True)
    for ax, cls in zip(np.atleast_1d(axes), classes):
        grid = d[d.expected == cls].pivot_table(index="method", columns="tool", values="value", sort=False)
        grid.index = grid.index.map(label)
        sns.heatmap(grid, vmin=0, vmax=1, annot=True, fmt=".2f", cmap="RdYlGn", cbar=False, ax=ax)
        ax.set(title=f"expected {cls}", xlabel="", ylabel="")
    fig.tight_layout()
    return fig


def accuracy_with_controls(acc, tool: str, classes=("ImgD", "TxtD", "CMD")):
    """Accuracy per expected class of every method for one tool, with the random-partition, side-only and
    shuffled-pairing controls beside it and 95% intervals."""
    colors = {"method": "crimson", "random partition": "grey", "side only": "darkorange",
              "shuffled pairing": "steelblue"}
    d = acc[acc.tool == tool]
    methods = list(dict.fromkeys(d.method))
    fig, axes = plt.subplots(1, len(classes), figsize=(4.6 * len(classes), 3.6), sharey=True)
    for ax, cls in zip(np.atleast_1d(axes), classes):
        for j, (cond, c) in enumerate(colors.items()):
            t = d[(d.expected == cls) & (d.condition == cond)].set_index("method").reindex(methods)
            xs = np.arange(len(methods)) + (j - 1.5) * 0.2
            ax.errorbar(xs, t.value, yerr=[t.value - t.low, t.high - t.value], fmt="o", color=c,
                        capsize=3, label=cond, ms=4)
        ax.set_xticks(range(len(methods)), [label(m) for m in methods], rotation=60, ha="right", fontsize=8)
        ax.set(title=f"{tool}: expected {cls}", ylim=(-0.05, 1.05))
    np.atleast_1d(axes)[0].set_ylabel("accuracy")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sweep_against_ideal(rows, title: str, ax=None):
    """Mean measured dominance against the ideal value, one line per (tool, method), with the diagonal."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], color="black", ls="--", lw=1, label="ideal")
    for (tool, method), d in rows.groupby(["tool", "method"], sort=False):
        m = d.groupby("ideal").measured.mean()
        ax.plot(m.index, m.to_numpy(), marker="o", ms=3, label=f"{tool}: {label(method)}")
    ax.set(xlabel="ideal dominance", ylabel="measured dominance (mean over units)", title=title,
           xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
    return ax


def band(ax, d, x: str, label: str, **style):
    """The book's one interval plot: `value` against column x with its 95% band (`low` to `high`), from a
    table in `stats.COLUMNS` layout; returns the line."""
    line = ax.plot(d[x], d["value"], marker="o", label=label, **style)[0]
    ax.fill_between(d[x], d["low"], d["high"], alpha=0.2, color=line.get_color())
    return line


def seed_band(ax, summary, x: str, label: str, reference: str, color=None):
    """On ax: the mean over seed models against column x with its `band`, and the reference model dashed in
    the same colour; `summary` as `stats.seed_summary` gives it."""
    line = band(ax, summary, x, f"{label} (seeds)", color=color)
    ax.plot(summary[x], summary[reference], ls="--", color=line.get_color(), label=f"{label} ({reference})")
    return ax


def attack_success(summary, ylabel: str = "success", classes=("ImgD", "TxtD", "CMD")):
    """Per labelling (a panel each): the value of `adversarial.summarise` against the budget for each class
    (solid), its matched random sets (dotted, same colour) and the whole-embedding attack (black), with 95%
    intervals over seeds."""
    names = [n for n in dict.fromkeys(summary.labelling) if n != "-"]
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.6), squeeze=False, sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ref = summary[summary.kind == "reference"]
    for ax, name in zip(axes[0], names):
        d = summary[summary.labelling == name]
        ax.errorbar(ref.budget, ref.value, yerr=[ref.value - ref.low, ref.high - ref.value], color="black",
                    marker="s", capsize=3, label="whole embedding")
        for c, cls in zip(colours, classes):
            for attack, style in ((cls, "-"), (f"random, {cls}-matched", ":")):
                t = d[d.attack == attack]
                if len(t):
                    ax.plot(t.budget, t.value, ls=style, marker="o", color=c,
                            label=cls if style == "-" else f"random, {cls}-matched")
                    ax.fill_between(t.budget, t.low, t.high, color=c, alpha=0.12)
        ax.set(title=label(name), xlabel="budget (1/255)", ylabel=ylabel, xscale="log", ylim=(-0.02, 1.02))
        ax.minorticks_off()
        ax.set_xticks(sorted(summary.budget.unique()), [str(b) for b in sorted(summary.budget.unique())])
    axes[0, -1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def class_effects(moved, classes=("ImgD", "TxtD", "CMD"), ylabel: str = "change beyond matched random sets"):
    """Per labelling (a panel each): for each factor (or readout), how much more removing each class changes it
    than removing its matched random sets (`control.verdicts` rows with a `factor` column: value, low, high),
    filled where the verdict is 'above' or 'below'."""
    names = list(dict.fromkeys(moved.labelling))
    factors = list(dict.fromkeys(moved.factor))
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.6), squeeze=False, sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        d = moved[moved.labelling == name]
        for j, cls in enumerate(classes):
            t = d[d["class"] == cls].set_index("factor").reindex(factors)
            if t.value.isna().all():
                continue
            pos = np.arange(len(factors)) + (j - 1) * 0.25
            lo, hi = (t.value - t.low).fillna(0), (t.high - t.value).fillna(0)
            ax.errorbar(pos, t.value, yerr=[lo, hi], fmt="none", ecolor=colours[j], capsize=3)
            decided = t.verdict.isin(["above", "below"]).to_numpy()
            ax.scatter(pos[decided], t.value[decided], color=colours[j], zorder=3, label=f"remove {cls}")
            ax.scatter(pos[~decided], t.value[~decided], facecolor="white", edgecolor=colours[j], zorder=3,
                       label=None if decided.any() else f"remove {cls}")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(factors)), factors)
        ax.set(title=label(name), ylabel=ylabel)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def coherence_by_m(summary, chance: dict | None = None):
    """Coherence scores against m: a row per space, a panel per metric, a line per tool with 95% intervals
    (from `interpretability.summarise_scores`); dotted lines mark chance (1/2 for the win rates)."""
    chance = {"WinRate": 0.5, "vs random SAE": 0.5} if chance is None else chance
    spaces, metrics, tools, ms = (list(dict.fromkeys(summary[c])) for c in ("space", "metric", "tool", "m"))
    fig, axes = plt.subplots(len(spaces), len(metrics), figsize=(13, 3.4 * len(spaces)), squeeze=False)
    for row, space in zip(axes, spaces):
        for ax, metric in zip(row, metrics):
            d = summary[(summary.metric == metric) & (summary.space == space)]
            for j, tool in enumerate(tools):
                t = d[d.tool == tool]
                offset = (j - len(tools) / 2) * 0.6
                ax.errorbar(np.array(t.m) + offset, t.value, yerr=[t.value - t.low, t.high - t.value],
                            marker="o", capsize=3, label=tool)
            ax.set(xlabel="m (size of the top-m set)", ylabel=metric, xticks=ms, title=space)
            if metric in chance:
                ax.axhline(chance[metric], color="grey", ls=":")
    axes[0, 0].legend(fontsize=8, ncols=2)
    fig.tight_layout()
    return fig


def removal_against_random(table, metrics=None):
    """Change of each readout when a class of latents is removed (red) beside its matched random sets (grey:
    the value for a random set of the class's totals and the 95% range), a row per labelling rule; `table`
    holds `control.compare` rows with a `rule` column."""
    rules = list(dict.fromkeys(table.rule))
    metrics = list(dict.fromkeys(table.readout)) if metrics is None else list(metrics)
    fig, axes = plt.subplots(len(rules), len(metrics), figsize=(4 * len(metrics), 3.2 * len(rules)), squeeze=False)
    for (rule, metric), ax in zip([(r, m) for r in rules for m in metrics], axes.flat):
        d = table[(table.readout == metric) & (table.rule == rule)]
        mid = d["random mean"]
        err = [np.maximum(mid - d["random 2.5%"], 0), np.maximum(d["random 97.5%"] - mid, 0)]  # rounding
        ax.errorbar(d["class"], mid, yerr=err, fmt="o", color="grey",
                    capsize=4, label="matched random sets (95% range)")
        ax.scatter(d["class"], d["change"], color="crimson", zorder=3, label="the class")
        ax.axhline(0, color="black", lw=0.8)
        ax.set(title=f"{metric} ({rule} rule)", ylabel="change from the reconstruction")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def dose_response(table, metrics=None):
    """Change of each readout as a class's latents are removed in score order, k at a time (a line per class),
    beside matched random sets of k latents drawn outside the class (shaded: their 95% range; dashed: the
    value for a set of the class's totals); `table` holds `control.dose_response` rows (means over seeds),
    with a row of panels per `labelling` where it has that column."""
    metrics = list(dict.fromkeys(table.readout)) if metrics is None else list(metrics)
    names = list(dict.fromkeys(table.labelling)) if "labelling" in table else [None]
    colors = dict(zip(("ImgD", "TxtD", "CMD"), ("tab:blue", "tab:orange", "tab:green")))
    fig, axes = plt.subplots(len(names), len(metrics), figsize=(4.3 * len(metrics), 3.4 * len(names)),
                             squeeze=False)
    for (name, metric), ax in zip([(n, m) for n in names for m in metrics], axes.flat):
        d = table[table.readout == metric]
        d = d if name is None else d[d.labelling == name]
        drawn = False
        for cls, g in d.groupby("class", sort=False):
            g = g.groupby("dose").mean(numeric_only=True).dropna(subset=["random mean"])
            if g.empty:
                continue
            c = colors.get(cls, "grey")
            ax.fill_between(g.index, g["random 2.5%"], g["random 97.5%"], color=c, alpha=0.15)
            ax.plot(g.index, g["random mean"], ls="--", color=c, lw=1)
            ax.plot(g.index, g["change"], "o-", color=c, label=cls)
            drawn = True
        ax.axhline(0, color="black", lw=0.8)
        if drawn:
            ax.set_xscale("log", base=2)
        else:  # said, not left blank
            ax.text(0.5, 0.5, "no dose has a matched control", transform=ax.transAxes, ha="center")
        ax.set(title=metric if name is None else f"{metric} ({label(name)})", xlabel="latents removed (score order)",
               ylabel="change from the reconstruction")
    first = next((a for a in axes.flat if a.get_legend_handles_labels()[0]), None)
    if first is not None:
        first.legend(fontsize=8)
    fig.tight_layout()
    return fig


def example_rows(rows, ncols: int = 6, size: float = 1.5, wrap: int = 22):
    """One row of images per entry of rows, a list of (title, images or None, captions): e.g. the top images
    of one feature per class. A row without images says so."""
    fig = plt.figure(figsize=(size * ncols, (size + 0.75) * len(rows)), layout="constrained")
    for sub, (title, images, captions) in zip(np.atleast_1d(fig.subfigures(len(rows), 1)), rows):
        sub.suptitle(title)
        axes = sub.subplots(1, ncols, squeeze=False)[0]
        for ax in axes:
            ax.axis("off")
        if images is None:
            axes[0].text(0, 0.5, "fires on no image", transform=axes[0].transAxes)
            continue
        for ax, im, cap in zip(axes, images, captions):
            ax.imshow(np.asarray(im), interpolation="nearest")
            ax.set_title("\n".join(textwrap.wrap(cap, wrap)), fontsize=8)
    return fig


def token_plane(visual, text, n: int = 600, seed: int = 0):
    """Unit visual tokens and text token embeddings in the plane of their two mean directions: x along
    the text mean, y along the part of the visual mean orthogonal to it (orthogonal cones sit on the
    two axes)."""
    import torch

    v = torch.nn.functional.normalize(visual.float(), dim=-1)
    t = torch.nn.functional.normalize(text.float(), dim=-1)
    e1 = torch.nn.functional.normalize(t.mean(0), dim=0)
    e2 = v.mean(0) - (v.mean(0) @ e1) * e1
    e2 = e2 / e2.norm()
    g = torch.Generator().manual_seed(seed)
    fig, ax = plt.subplots(figsize=(5, 4.6))
    for name, a in (("text token embeddings", t), ("projected visual tokens", v)):
        a = a[torch.randperm(len(a), generator=g)[:n]]
        ax.scatter(a @ e1, a @ e2, s=6, alpha=0.5, label=name)
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set(xlabel="along the text mean", ylabel="along the visual mean (orthogonal part)", aspect="equal")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def per_layer(summary, quantities, title: str = "", ylabel: str = "", ax=None):
    """Lines against layer (0 = the input tokens), one `band` per quantity of a `stats.intervals` table by
    layer; on `ax` when given."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6)) if ax is None else (ax.figure, ax)
    for q in quantities:
        band(ax, summary[summary.quantity == q], "layer", q)
    ax.set(xlabel="layer (0 = the tokens the language model receives)", ylabel=ylabel, title=title,
           xticks=sorted(set(summary.layer)))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def follow_rates(summary, order=("image", "text", "other")):
    """Stacked bars per factor (panel) and intervention: the shares of answers that follow the image, the
    text or neither under conflicting prompts (means over seeds; the intervals are in the tables)."""
    summary = summary.pivot_table(index=["factor", "intervention"], columns="quantity", values="value",
                                  sort=False).reset_index()
    factors = list(dict.fromkeys(summary.factor))
    fig, axes = plt.subplots(1, len(factors), figsize=(5.2 * len(factors), 3.6), squeeze=False,
                             sharey=True)
    colours = {"image": "tab:blue", "text": "tab:orange", "other": "lightgrey"}
    for ax, f in zip(axes[0], factors):
        d = summary[summary.factor == f]
        bottom = np.zeros(len(d))
        for k in order:
            label = "neither" if k == "other" else f"follows the {k}"
            ax.bar(range(len(d)), d[k], bottom=bottom, color=colours[k],
                   label=label if ax is axes[0, 0] else None)
            bottom += d[k].to_numpy()
        ax.set_xticks(range(len(d)), d.intervention, rotation=20, fontsize=8)
        ax.set(title=f"asked the {f}", ylim=(0, 1))
    axes[0, 0].set_ylabel("share of answers")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(fontsize=8, loc="upper center", ncols=3, frameon=False)
    return fig
