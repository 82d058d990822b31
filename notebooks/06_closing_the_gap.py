# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# (closing-the-gap)=
# # Closing the gap: accuracy and robustness
#
# If the gap is an offset between two cones, can it simply be removed after training? Three answers
# have been given:
#
# - {cite:t}`liang2022mind` shift both modalities towards each other along the gap vector and find
#   small, dataset-dependent changes in zero-shot accuracy;
# - {cite:t}`schrodi2025two` find that the gap sits in a few embedding dimensions;
# - {cite:t}`chowers2026gap` argue that the gap is orthogonal to both modalities' spans, so that
#   moving one modality towards the other leaves clean accuracy alone and makes nearest-neighbour
#   decisions more robust; they translate the searched modality along the part of the gap outside
#   its principal subspace.
#
# This chapter repeats all three on small CLIPs of the world, over several independently trained
# models.
#
# :::{admonition} What you will learn
# - how to shift both modalities along the gap vector, and why such a shift barely moves zero-shot
#   predictions;
# - how to find the embedding dimensions that carry the gap, and what removing them does;
# - how to translate one modality along the gap projected off its principal subspace, and how to
#   measure the robustness of nearest-neighbour decisions to noise, quantisation and paraphrase;
# - how far the gap really is orthogonal to the two modalities, the premise of that theory.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
n_seeds = 3  # independently trained sweep CLIPs
sweep_temperature = 0.01  # the fine-tuning temperature of the sweep CLIPs studied here
shift_fractions = [-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]  # Liang shift λ / each model's L2M
n_drop = 16  # gap dimensions removed one at a time
alphas = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]  # Chowers translation, in (projected) gaps
k_fractions = [0.0, 0.125, 0.25, 0.5]  # principal directions removed from the gap, share of width
variances = [0.005, 0.022, 0.040]  # Gaussian noise variances (Chowers et al.)
bins = [32, 64, 128, 256]  # quantisation levels (Chowers et al.)
n_noise = 20  # noise draws per setting

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from mdsgap import experiment, gap, plots, stats, world
from mdsgap.clip import evaluation, training
from mdsgap.gap import robustness, shifting
from mdsgap.book import check_declared, glue

# %%
S = experiment.ExperimentConfig.from_params(globals())
check_declared(globals(), dict(
    n_seeds=int, sweep_temperature=float, shift_fractions=list, n_drop=int, alphas=list,
    k_fractions=list, variances=list, bins=list, n_noise=int))
experiment.needs_world(S, "the world's factors (its zero-shot scores and noise study read them)")
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## The models
#
# The {glue:text}`n_seeds` sweep CLIPs of {doc}`05_why_the_gap` fine-tuned at temperature
# {glue:text}`sweep_temperature` (seeds {glue:text}`seed_list`) give the confidence intervals; the
# CLIP of {doc}`01_measuring_gap` is shown beside them. Every model is scored on
# {glue:text}`n_test` held-out pairs of the default world.

# %%
recipe = training.SweepConfig.from_params(globals())


def sweep_clip(s: int):
    return training.cached_clip(recipe.finetune(s, sweep_temperature), progress=False,
                                 device=S.device).clip


seeds = [S.seed + i for i in range(n_seeds)]
clips = {f"seed {s}": sweep_clip(s) for s in seeds} if S.trains_small_clip else {}
main_label = "chapter 1 CLIP" if S.trains_small_clip else experiment.subject(S).label
clips[main_label] = experiment.subject(S).clip


# %%
def unit_classes(clip, templates=None) -> dict:
    """Zero-shot class embeddings of every factor (unit rows), from all templates or the given."""
    return {k: gap.normalize(v) for k, v in evaluation.zero_shot_classes(clip, templates).items()}


def embedded(clip) -> dict:
    """The test pairs embedded by clip (unit rows), its class prompts and each template's."""
    d = experiment.test_data(S, clip, progress=False)
    return {"x": gap.normalize(d.x), "y": gap.normalize(d.y), "factors": d.factors,
            "classes": unit_classes(clip),
            "templates": {t: unit_classes(clip, [t])
                          for t in world.FACTOR_BY_NAME["template"].values}}


# %%
data = {name: embedded(clip) for name, clip in clips.items()}
SEEDS = [n for n in data if n != main_label]
glue("n_seeds", n_seeds)
glue("seed_list", ", ".join(map(str, seeds)))
glue("sweep_temperature", sweep_temperature)
glue("n_test", S.n_test)
pd.DataFrame({n: {"width": d["x"].shape[1], "L2M": gap.l2m(d["x"], d["y"]),
                  "zero-shot": evaluation.zero_shot_scores(d["x"], d["classes"], d["factors"])
                  .accuracy.mean()}
              for n, d in data.items()}).T.style.format(precision=3)


# %%
def zero_shot(x, classes, factors) -> float:
    return float(evaluation.zero_shot_scores(x, classes, factors).accuracy.mean())


def consistent_t2i(y, x, factors) -> float:
    """Text-to-image retrieval: share of captions whose nearest image they are true of."""
    hit = robustness.nearest(y, x).numpy()
    return float(evaluation.consistent(factors, hit, np.arange(len(y))).mean())


def summarise(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean and 95% t-interval over the seed models, with the chapter 1 model beside it."""
    return stats.seed_summary(df, by, value, SEEDS, main_label)


# %% [markdown]
# ## 1. Shifting along the gap (Liang et al.)
#
# With $u$ the unit gap direction (image mean minus text mean), images move by $-\lambda/2\,u$ and
# texts, including the zero-shot class prompts, by $+\lambda/2\,u$, each then renormalised.
# $\lambda$ runs over {glue:text}`shift_list` times each model's L2M, so $\lambda = $ L2M meets the
# centroids halfway from each side.

# %%
def shifted(d: dict, f: float) -> dict:
    """Shift one model's embeddings by λ = f × its L2M and score the gap, zero-shot accuracy and
    text→image retrieval afterwards."""
    lam = f * gap.l2m(d["x"], d["y"])
    xs, ys, cls = shifting.liang_shift(d["x"], d["y"], lam, d["classes"])
    return {"shift": f, "L2M": gap.l2m(xs, ys), "zero-shot": zero_shot(xs, cls, d["factors"]),
            "consistent@1 (text→image)": consistent_t2i(ys, xs, d["factors"])}


liang = pd.DataFrame([{"model": name, **shifted(d, f)}
                      for name, d in data.items() for f in shift_fractions])
glue("shift_list", ", ".join(f"{f:g}" for f in shift_fractions))

# %% mystnb={"figure": {"caption": "The gap, zero-shot accuracy and text-to-image retrieval after shifting both modalities by λ along the gap direction: mean and 95% band over the seed models, the chapter 1 CLIP dashed.", "name": "fig-closing-shift"}}
metrics = ["L2M", "zero-shot", "consistent@1 (text→image)"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for ax, metric in zip(axes, metrics):
    plots.seed_band(ax, summarise(liang, ["shift"], metric), "shift", metric, main_label)
    ax.set(xlabel="λ / L2M", title=metric)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %%
sz = summarise(liang, ["shift"], "zero-shot").set_index("shift")
base_zs = sz.loc[0.0, "value"]
best = sz["value"].idxmax()
glue("zs_unshifted", base_zs)
glue("zs_best", sz.loc[best, "value"])
glue("best_shift", best)
glue("zs_closed", sz.loc[1.0, "value"] if 1.0 in sz.index else np.nan)
sl = summarise(liang, ["shift"], "L2M").set_index("shift")
glue("l2m_closed", sl.loc[1.0, "value"] if 1.0 in sl.index else np.nan)

# %% [markdown]
# Unshifted, the seed models' mean zero-shot accuracy is {glue:text}`zs_unshifted:.3f`; the best
# shift on the grid, $\lambda$ = {glue:text}`best_shift` L2M, gives {glue:text}`zs_best:.3f`, and
# $\lambda$ = L2M, which brings the gap down to {glue:text}`l2m_closed:.2f`, gives
# {glue:text}`zs_closed:.3f` ({numref}`fig-closing-shift`). {cite:t}`liang2022mind` saw changes of
# under one point on CIFAR-10 and CIFAR-100. Because a shift along $u$ moves every image by the same
# vector, and every class prompt by the same vector, an image's ranking of the classes changes only
# through the renormalisation.

# %% [markdown]
# ## 2. The gap dimensions (Schrodi et al.)
#
# Sort the embedding dimensions by how much the two modality means differ in them and set them to
# zero one at a time (images, captions and class prompts alike, renormalising after each). The
# control removes the same number of dimensions in a random order.

# %%
rows = []
for name, d in data.items():
    order = {"largest mean difference first": shifting.gap_dimensions(d["x"], d["y"]),
             "random order": torch.randperm(d["x"].shape[1],
                                            generator=torch.Generator().manual_seed(S.seed))}
    for how, dims in order.items():
        for j in range(0, min(n_drop, d["x"].shape[1] - 1) + 1):
            xs = shifting.drop_dimensions(d["x"], dims[:j])
            ys = shifting.drop_dimensions(d["y"], dims[:j])
            cls = {k: shifting.drop_dimensions(v, dims[:j]) for k, v in d["classes"].items()}
            rows.append({"model": name, "order": how, "removed": j, "L2M": gap.l2m(xs, ys),
                         "zero-shot": zero_shot(xs, cls, d["factors"])})
dims_df = pd.DataFrame(rows)

# %% mystnb={"figure": {"caption": "The gap and zero-shot accuracy as embedding dimensions are set to zero one at a time, those where the modality means differ most first (red) or in a random order (grey): mean and 95% band over the seed models, the chapter 1 CLIP dashed.", "name": "fig-closing-dimensions"}}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, metric in zip(axes, ["L2M", "zero-shot"]):
    for how, color in zip(dims_df.order.unique(), ("crimson", "grey")):
        table = summarise(dims_df[dims_df.order == how], ["removed"], metric)
        plots.seed_band(ax, table, "removed", how, main_label, color)
    ax.set(xlabel="dimensions removed", title=metric)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()


# %%
def at_removed(how, metric, j):
    t = summarise(dims_df[dims_df.order == how], ["removed"], metric).set_index("removed")
    return t.loc[min(j, t.index.max())]


few = 4
glue("few", few)
glue("l2m_full", at_removed("random order", "L2M", 0)["value"])
glue("l2m_few_gap", at_removed("largest mean difference first", "L2M", few)["value"])
glue("l2m_few_rand", at_removed("random order", "L2M", few)["value"])
glue("zs_few_gap", at_removed("largest mean difference first", "zero-shot", few)["value"])
glue("zs_few_rand", at_removed("random order", "zero-shot", few)["value"])
glue("zs_full", at_removed("random order", "zero-shot", 0)["value"])

# %% [markdown]
# Removing the {glue:text}`few` dimensions with the largest mean difference takes the gap from
# {glue:text}`l2m_full:.2f` to {glue:text}`l2m_few_gap:.2f`; {glue:text}`few` random dimensions take
# it to {glue:text}`l2m_few_rand:.2f`. Zero-shot accuracy goes from {glue:text}`zs_full:.3f` to
# {glue:text}`zs_few_gap:.3f` (random: {glue:text}`zs_few_rand:.3f`); {numref}`fig-closing-dimensions`
# follows both, dimension by dimension.

# %% [markdown]
# ## 3. Translating along the projected gap (Chowers et al.)
#
# **Conventions.** The *database* modality (the one searched) moves towards the *query* modality:
# $g = \bar q - \bar d$, $g' = g - V V^\top g$ with $V$ the top-$k$ principal directions of the
# database modality (centred), and $d' = d + \alpha\,g'$, not renormalised; nearest neighbours are
# by cosine similarity. $k = 0$ is the plain mean shift. $k$ runs over {glue:text}`k_list` of the
# embedding width and $\alpha$ over {glue:text}`alpha_list`.
#
# The task is zero-shot classification, as in their CIFAR experiments: the images query the class
# prompts, so the prompts are the database and move towards the images ($g$ = image mean minus
# caption mean, $V$ from the captions). Robustness is the share of images whose predicted class is
# unchanged when the translated prompts are perturbed, as Chowers et al. define it: Gaussian noise
# of variance {glue:text}`variance_list` per coordinate ({glue:text}`n_noise` draws each),
# quantisation to {glue:text}`bin_list` bins on $[-1, 1]$, and a caption paraphrase: prompts written
# in another of the world's templates. Beside it, clean text→image retrieval with the images
# translated towards the captions.

# %%
rows = []
for name, d in data.items():
    x, y, factors = d["x"], d["y"], d["factors"]
    for kf in k_fractions:
        k = int(round(kf * x.shape[1]))
        g_txt = shifting.projected_gap(x, y, k)  # prompts move towards the images; V: captions
        g_img = shifting.projected_gap(y, x, k)  # for retrieval, images move towards the captions
        for alpha in alphas:
            cls = {c: v + alpha * g_txt for c, v in d["classes"].items()}
            rob = {**robustness.perturbation_table(x, cls, variances, bins, n_noise),
                   "paraphrase": robustness.paraphrase_agreement(x, d["templates"], alpha * g_txt)}
            rows.append({"model": name, "k share": kf, "k": k, "alpha": alpha,
                         "zero-shot": zero_shot(x, cls, factors), "consistent@1 (text→image)":
                         consistent_t2i(y, shifting.translate(x, g_img, alpha), factors), **rob})
chowers = pd.DataFrame(rows)

# %%
glue("k_list", ", ".join(f"{k:g}" for k in k_fractions))
glue("alpha_list", ", ".join(f"{a:g}" for a in alphas))
glue("variance_list", ", ".join(f"{v:g}" for v in variances))
glue("bin_list", ", ".join(map(str, bins)))
glue("n_noise", n_noise)

# %% mystnb={"figure": {"caption": "Zero-shot accuracy, text-to-image retrieval and the robustness of zero-shot predictions to noise, quantisation and paraphrase against the translation α, one line per number of principal directions projected off the gap: mean and 95% band over the seed models.", "name": "fig-closing-translation"}}
panels = ["zero-shot", "consistent@1 (text→image)", *[f"noise {v}" for v in variances],
          f"{bins[0]} bins", f"{bins[-1]} bins", "paraphrase"]
fig, axes = plt.subplots(2, 4, figsize=(15, 6.5))
for ax, metric in zip(axes.flat, panels):
    for kf in k_fractions:
        t = summarise(chowers[chowers["k share"] == kf], ["alpha"], metric)
        label = "plain mean shift (k = 0)" if kf == 0 else f"k = {kf:g} × width"
        plots.band(ax, t, "alpha", label)
    plain = metric.startswith(("zero", "consistent"))
    ax.set(xlabel="α", title=metric if plain else f"robustness, {metric}")
axes[0, 0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# The numbers behind {numref}`fig-closing-translation`, averaged over the seed models:

# %%
metric_cols = ["zero-shot", "consistent@1 (text→image)", *[f"noise {v}" for v in variances],
               *[f"{b} bins" for b in bins], "paraphrase"]
table = chowers[chowers.model.isin(SEEDS)].groupby(["k share", "alpha"])[metric_cols].mean()
table.style.format(precision=3).format_index(precision=2)


# %%
def val(metric, kf, alpha):
    t = summarise(chowers[chowers["k share"] == kf], ["alpha"], metric).set_index("alpha")
    return t.loc[alpha]


kp = [k for k in k_fractions if k > 0][0] if any(k > 0 for k in k_fractions) else 0.0
noise_metric = f"noise {variances[-1]}"
glue("kp", kp)
glue("var_max", variances[-1])
glue("var_min", variances[0])
glue("bins_min", bins[0])

# %%
for kf, key in ((0.0, "plain"), (kp, "proj")):
    for alpha, akey in ((0.0, "a0"), (1.0, "a1")):
        for metric, mkey in (("zero-shot", "zs"), (noise_metric, "rob"),
                             (f"noise {variances[0]}", "rob0"), (f"{bins[0]} bins", "quant"),
                             ("paraphrase", "para"), ("consistent@1 (text→image)", "ret")):
            r = val(metric, kf, alpha)
            glue(f"{key}_{akey}_{mkey}", r["value"])
            glue(f"{key}_{akey}_{mkey}_ci", f"[{r['low']:.2f}, {r['high']:.2f}]")

# %% [markdown]
# Before any translation, zero-shot predictions survive Gaussian noise of variance
# {glue:text}`var_min` on the prompts for a share {glue:text}`plain_a0_rob0:.3f`
# ({glue:text}`plain_a0_rob0_ci`) of the images. Translating the prompts along the full gap
# ($\alpha = 1$, $k = 0$) gives {glue:text}`plain_a1_rob0:.3f` ({glue:text}`plain_a1_rob0_ci`);
# along the gap projected off the top {glue:text}`kp` × width principal directions of the captions,
# {glue:text}`proj_a1_rob0:.3f` ({glue:text}`proj_a1_rob0_ci`). At variance {glue:text}`var_max` the
# three are {glue:text}`plain_a0_rob:.3f`, {glue:text}`plain_a1_rob:.3f` and
# {glue:text}`proj_a1_rob:.3f`. Under quantisation to {glue:text}`bins_min` bins:
# {glue:text}`plain_a0_quant:.3f`, {glue:text}`plain_a1_quant:.3f` and
# {glue:text}`proj_a1_quant:.3f`. Under paraphrase: {glue:text}`plain_a0_para:.3f`,
# {glue:text}`plain_a1_para:.3f` and {glue:text}`proj_a1_para:.3f`.
#
# Clean zero-shot accuracy stays at {glue:text}`plain_a0_zs:.3f` → {glue:text}`plain_a1_zs:.3f`
# (plain) and {glue:text}`proj_a1_zs:.3f` (projected). That part needs no theory: adding one vector
# to every prompt adds the same number to every image–prompt dot product, so only the prompts'
# norms, through the cosine, can change a prediction. What the translation does change is the
# prompts' norms, and with them how much a perturbation of fixed size moves them. Text→image
# retrieval, where the images move, goes from {glue:text}`plain_a0_ret:.3f` to
# {glue:text}`plain_a1_ret:.3f` (plain) and {glue:text}`proj_a1_ret:.3f` (projected) consistent@1.

# %% [markdown]
# ## 4. Is the gap orthogonal to the modalities?
#
# Chowers et al.'s argument rests on the gap vector lying outside both modalities' spans.
# {numref}`fig-closing-orthogonality` gives the share of the gap's squared norm outside each
# modality's top-$k$ principal subspace, against $k$; a random direction keeps a share $1 - k/d$
# outside (dotted).

# %%
rows = []
for name, d in data.items():
    g = shifting.projected_gap(d["y"], d["x"], 0)
    width = d["x"].shape[1]
    for k in range(0, width + 1, max(1, width // 16)):
        rows.append({"model": name, "k / width": k / width,
                     "images": shifting.orthogonality(g, d["x"], k),
                     "captions": shifting.orthogonality(g, d["y"], k)})
orth = pd.DataFrame(rows)

# %% mystnb={"figure": {"caption": "Share of the gap vector's squared norm outside the top-k principal directions of the images (blue) and of the captions (orange), against k as a share of the width; the seed models solid, the chapter 1 CLIP dashed, a random direction dotted.", "name": "fig-closing-orthogonality"}}
fig, ax = plt.subplots(figsize=(6, 3.8))
for side, color in (("images", "tab:blue"), ("captions", "tab:orange")):
    for name, t in orth.groupby("model"):
        main = name == main_label
        label = side if name == SEEDS[0] else (f"{side} ({main_label})" if main else None)
        ax.plot(t["k / width"], t[side], color=color, alpha=0.9 if main else 0.4,
                ls="--" if main else "-", label=label)
ax.plot([0, 1], [1, 0], ls=":", color="grey", label="random direction")
ax.set(xlabel="k / width (top-k principal directions)", ylabel="share of the gap outside")
ax.legend(fontsize=8)
plt.show()


# %%
def outside(side, frac):
    t = orth[orth["k / width"].round(3) == round(frac, 3)]
    return summarise(t.rename(columns={side: "v"}).assign(x=0), ["x"], "v").iloc[0]


q = 0.25
glue("q", q)
glue("orth_img", outside("images", q)["value"])
glue("orth_txt", outside("captions", q)["value"])
glue("orth_random", 1 - q)

# %% [markdown]
# Outside the top quarter of the principal directions ({glue:text}`q` × width) lies a share
# {glue:text}`orth_img:.2f` of the gap for the images and {glue:text}`orth_txt:.2f` for the
# captions, against {glue:text}`orth_random:.2f` for a random direction. The image and caption
# embeddings fill their space, so no direction is orthogonal to their whole span; the theory's
# premise holds only approximately, to the degree {numref}`fig-closing-orthogonality` shows.


# %% [markdown]
# The exact part of their theory can be shown on the zero-shot prompts, which span only a few
# dimensions: translate every factor's class prompts by the part of the gap orthogonal to their
# span, and by the whole gap, and count the images whose prediction is unchanged.

# %%
rows = []
for name, d in data.items():
    g = shifting.projected_gap(d["x"], d["y"], 0)
    for c, e in d["classes"].items():
        q, _ = torch.linalg.qr(e.T)  # orthonormal basis of the prompts' span
        t_orth = g - q @ (q.T @ g)
        before = evaluation.zero_shot_predict(d["x"], e)
        unchanged = lambda moved: (evaluation.zero_shot_predict(d["x"], moved) == before).mean()
        rows.append({"model": name, "factor": c, "orthogonal to the span": unchanged(e + t_orth),
                     "the whole gap": unchanged(e + g)})
invariance = pd.DataFrame(rows)

# %%
glue("inv_orth", float(invariance["orthogonal to the span"].min()))
glue("inv_full", float(invariance["the whole gap"].min()))
invariance.groupby("model")[["orthogonal to the span", "the whole gap"]].min().style.format(
    precision=4)

# %% [markdown]
# Translated orthogonally to their span, the prompts leave at least a share
# {glue:text}`inv_orth:.4f` of the predictions unchanged (every one: the rows keep equal norms, so
# cosine ranks cannot move); translated by the whole gap, as little as {glue:text}`inv_full:.4f` in
# the worst case. The same invariance is checked exactly, for cosine and Euclidean nearest
# neighbours, in `tests/test_shifting.py`.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-closing-1
# Section 1 shifted each model by $\lambda$ = {glue:text}`shift_list` times its L2M. Shift every
# model by twice its L2M instead, so that the centroids pass each other, and compare the gap and the
# zero-shot accuracy with those of the unshifted model.
# ```
#
# ```{solution-start} ex-closing-1
# :class: dropdown
# ```

# %%
for name, d in data.items():
    before, after = shifted(d, 0.0), shifted(d, 2.0)
    print(f"{name}: L2M {before['L2M']:.3f} -> {after['L2M']:.3f}, "
          f"zero-shot {before['zero-shot']:.3f} -> {after['zero-shot']:.3f}")

# %% [markdown]
# Past $\lambda$ = L2M the centroids cross, and the gap opens again with the modalities' roles
# swapped; the zero-shot accuracy, as everywhere in section 1, can only move through the
# renormalisation, because every image and every prompt moved by the same vector.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-closing-2
# How many dimensions must be removed to halve the gap, taking the largest mean differences first,
# and in the random order? Answer from the runs of section 2 (`dims_df`).
# ```
#
# ```{solution-start} ex-closing-2
# :class: dropdown
# ```

# %%
for how in dims_df.order.unique():
    t = summarise(dims_df[dims_df.order == how], ["removed"], "L2M").set_index("removed")["value"]
    halved = t[t <= t.loc[0] / 2]
    print(f"{how}: " + (f"{halved.index.min()} dimension(s) halve the gap" if len(halved) else
                        f"the gap is not halved within {t.index.max()} dimensions"))

# %% [markdown]
# If the gap sat in a few dimensions, as {cite:t}`schrodi2025two` find on real CLIPs, the first
# count would be small and the random order would need many more; the closer the two counts, the
# more the gap is spread over the whole embedding.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-closing-3
# Section 4 read the orthogonality at a quarter of the width. Read it at half the width, for both
# modalities, against a random direction.
# ```
#
# ```{solution-start} ex-closing-3
# :class: dropdown
# ```

# %%
half = 0.5
for side in ("images", "captions"):
    r = outside(side, half)
    print(f"{side}: a share {r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}] of the gap lies "
          f"outside the top half of the principal directions (a random direction: {1 - half:.2f})")

# %% [markdown]
# Read the two shares against the random direction's: the further above it, the more the gap
# avoids the directions in which that modality varies most, which is what the theory needs.
#
# ```{solution-end}
# ```
