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
# (measuring-the-gap)=
# # Measuring the modality gap
#
# A CLIP model maps an image and its caption into one embedding space, and training pulls each
# matched pair together.
# Yet the images and the texts do not mix: they sit in two separate regions of the unit sphere,
# an offset called the **modality gap** {cite}`liang2022mind`.
#
# This chapter measures the gap on a world whose every factor we know.
# We train a small CLIP on it, check that the model really learned the world, and then measure its
# gap with the metrics of {cite}`liang2022mind` and {cite}`schrodi2025two`, beside two untrained
# baselines.
#
# :::{admonition} What you will learn
# - how a synthetic world with known factors lets us check that a small CLIP learned something
#   before we measure it (zero-shot classification and retrieval);
# - four measures of the gap (L2M, L2I, the relative modality gap RMG, linear separability) and the
#   cone effect, each a function on plain embedding tensors;
# - that the gap is already there at random initialisation, before any training;
# - why a fixed low temperature and factors that one modality mostly lacks keep the gap open.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
reference_model = "ViT-B-32"  # a large architecture, measured at random initialisation
n_reference = 256  # pairs embedded with the reference model (slow on a CPU)
n_boot = 200  # bootstrap resamples for confidence intervals
n_seeds = 1  # training seeds for the seed-to-seed spread (seed, seed + 1, ...)

# %%
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from mdsgap import experiment, gap, plots, stats, world
from mdsgap.clip import evaluation, models, training
from mdsgap.book import check_declared, glue

S = experiment.ExperimentConfig.from_params(globals())
check_declared(globals(), dict(reference_model=str, n_reference=int, n_boot=int, n_seeds=int))
sns.set_theme(style="whitegrid", context="notebook")
print(S)

# %% [markdown]
# ## The world
#
# Each pair is a coloured shape on a textured background, and a caption
# ({numref}`fig-gap-world-sample`).
# Every factor has two probabilities: $q$, that the image shows it, and $p$, that the caption names
# it.
# The shape, its colour, the colour's shade (pale or deep) and the tint of the light (a warm or cool
# cast over the whole image) are **cross-modal**: always shown, always named.
# Size, position and the background's texture and brightness are **vision-dominant**: always shown,
# named in a quarter of the captions.
# A tone word ("lovely", "boring", ...), the time of day, the place ("indoors", "underwater", ...)
# and the season are **language-dominant**: always named, but shown (as a bar along one of the
# image's four edges) in only a quarter of the images.
# The shape's outline is never named and the caption's sentence frame never shown: the pure extremes.
# {doc}`04_ground_truth` uses these kinds as the ground truth for modality attribution.

# %%
cfg = world.WorldConfig()
world.factor_table(cfg).style.format(precision=2).hide(axis="index")

# %% mystnb={"figure": {"caption": "Twelve pairs of the data set, each image with its caption above it.", "name": "fig-gap-world-sample"}}
if S.on_world:
    sample = world.generate(cfg, 12, seed=S.seed, split="gallery")
    plots.image_grid(sample.images, sample.captions, ncols=6)
else:
    pairs, _ = experiment.load_pairs(S, 12)
    plots.image_grid(pairs.load_images(range(len(pairs))), pairs.captions, ncols=6)
plt.show()

# %% [markdown]
# ## Training the small CLIP
#
# The model is an open_clip CLIP with two transformer layers in each tower (`mdsgap-small`), trained
# from a random start with open_clip's contrastive loss on {glue:text}`n_train` generated pairs:
# {glue:text}`train_steps` AdamW steps of {glue:text}`batch_size` pairs, a one-cycle learning-rate
# schedule peaking at {glue:text}`train_lr`, and the softmax temperature fixed at
# {glue:text}`temperature`.
# Why a fixed temperature is the last section of this chapter.

# %%
for name in ("n_train", "train_steps", "train_lr", "batch_size", "temperature"):
    glue(name, getattr(S, name))

# %%
subject = experiment.subject(S)
test = experiment.test_data(S, subject.clip)
print(subject.label, "| test pairs:", len(test.x))
if not S.on_world and test.pairs.skipped:
    row, reason = test.pairs.skipped[0]
    print(f"{len(test.pairs.skipped)} CSV row(s) skipped; the first, row {row}: {reason}")

# %% [markdown]
# The training curve ({numref}`fig-gap-training`) shows the held-out loss and, at the same steps,
# the gap (L2M, defined below) and the cone of each modality.

# %% mystnb={"figure": {"caption": "Training the small CLIP: contrastive loss, the gap (L2M) and the cone of each modality against the optimiser step.", "name": "fig-gap-training"}}
if subject.trained is not None:
    plots.training_curve(subject.trained.history)
    plt.show()
else:
    print("The subject model was not trained here, so there is no training curve.")

# %% [markdown]
# ## Did it learn the world?
#
# Before measuring a gap we check that the model is worth measuring.
# Zero-shot classification asks, for each factor that every image shows and some captions name,
# which value's prompt ensemble is closest to the image embedding.
# The prompts name the value and the shape, in every caption template, with the words every caption
# of the world carries (the other cross-modal and the language-dominant factors; a fixed sample of
# their combinations where there are too many).

# %%
if S.on_world:
    zs = evaluation.zero_shot(subject.clip, test.x, test.factors)
    always = zs[zs.factor.isin(world.ALWAYS_NAMED)]
    worst = always.loc[always.accuracy.idxmin()]
    rest = zs[~zs.factor.isin(world.ALWAYS_NAMED)]
    display(zs.style.format({"accuracy": "{:.3f}", "chance": "{:.3f}"}).hide(axis="index"))

# %% [markdown]
# The weakest of the always-named factors gets a 95% t-interval over the test images; a CSV
# dataset has no factor labels, so there is nothing to classify.

# %%
if S.on_world:
    classes = evaluation.class_embeddings(subject.clip, worst.factor)
    truth = test.factors[worst.factor].cat.codes.to_numpy()
    right = (evaluation.zero_shot_predict(test.x, classes) == truth).astype(float)
    glue("zs_min", float(worst.accuracy))
    glue("zs_min_factor", str(worst.factor))
    glue("zs_min_ci", "[{1:.3f}, {2:.3f}]".format(*stats.seed_interval([right])))
    glue("zs_rest", ", ".join(f"{r.factor} {r.accuracy:.2f}" for r in rest.itertuples()))
    glue("zs_target", "met" if (always.accuracy >= 0.9).all() else "missed")
else:
    glue("zs_min", float("nan"))
    for name in ("zs_min_factor", "zs_rest"):
        glue(name, "(no factor labels for a CSV dataset)")
    glue("zs_min_ci", "(none)")
    glue("zs_target", "not checked (no factor labels)")

# %% [markdown]
# Of the factors every caption names, the weakest, {glue:text}`zs_min_factor`, is classified
# zero-shot with accuracy {glue:text}`zs_min:.3f` (95% interval over test images
# {glue:text}`zs_min_ci`).
# The vision-dominant factors, named in only a quarter of the captions, are read
# {glue:text}`zs_rest`: the text side learns their words from few examples, so some of them fall
# well below the always-named factors.
# The book's bar for a model worth measuring, zero-shot accuracy of at least 0.90 on every factor
# that all captions name, is {glue:text}`zs_target`.
#
# Retrieval asks the same from the other side: for each image, is its own caption the most similar?
# Many captions fit one image equally well here ("a circle" fits every circle), so we also count
# whether the top caption is *true of* the image.

# %%
ret = evaluation.retrieval(test.x, test.y, test.factors, seed=S.seed)
r1 = ret.query("direction == 'image→text' and metric == 'recall@1'").iloc[0]
glue("r1", r1.value)
glue("r1_chance", r1.chance)
glue("r1_ratio", r1.value / r1.chance)
cons = ret.query("metric == 'consistent@1'")
glue("cons1", cons.value.iloc[0] if len(cons) else float("nan"))
glue("cons1_chance", cons.chance.iloc[0] if len(cons) else float("nan"))
ret.style.format({"value": "{:.3f}", "chance": "{:.4f}"}).hide(axis="index")

# %% [markdown]
# Image-to-caption recall@1 is {glue:text}`r1:.3f` against a chance rate of
# {glue:text}`r1_chance:.4f`, {glue:text}`r1_ratio:.0f` times chance, and the top caption is true of
# its image for a share {glue:text}`cons1:.3f` of the images, where a random caption is true for
# {glue:text}`cons1_chance:.3f`.

# %% [markdown]
# ## The metrics
#
# With $x_i$ and $y_i$ the unit image and text embeddings of pair $i$:
#
# - **L2M**, the centroid distance $\lVert \bar x - \bar y \rVert$ {cite}`liang2022mind`;
# - **L2I**, the mean distance between matched pairs, $\frac1n \sum_i \lVert x_i - y_i \rVert$;
# - **RMG**, the relative modality gap of {cite}`schrodi2025two`: the matched-pair dissimilarity
#   $m = (1 - \overline{\cos(x_i, y_i)})/2$ divided by itself plus the mean within-modality
#   dissimilarity;
# - the **cone effect**: the mean cosine between two different embeddings of one modality;
# - **linear separability**: the held-out accuracy of a logistic-regression probe telling image from
#   text embeddings, with each pair's image and caption kept on the same side of the split
#   (chance 0.5).
#
# Each is a function on plain tensors in `mdsgap.gap`, so it measures a real CLIP's embeddings the
# same way.
# We compare the trained model with the same architecture at random initialisation and with a large
# architecture, ViT-B/32, also at random initialisation: no training at all.

# %%
random_label, ref_label = f"{S.clip_model} (random init)", f"{reference_model} (random init)"
random_small = models.create_clip(S.clip_model, "", seed=S.seed, device=S.device)
random_ref = models.create_clip(reference_model, "", seed=S.seed, device=S.device)
embedded = {subject.label: test,
            random_label: experiment.test_data(S, random_small),
            ref_label: experiment.test_data(S, random_ref, n=n_reference)}

# %%
table = gap.metrics_table({label: (d.x, d.y) for label, d in embedded.items()}, n_boot=n_boot,
                          seed=S.seed)
pairs = table.groupby("model", sort=False).pairs.first().astype(str).rename("pairs")
pd.concat([stats.formatted(table, "metric", columns="model"), pairs.to_frame().T])

# %%
at = table.set_index(["model", "metric"])
cell = lambda model, metric: at.loc[(model, metric), "value"]
l2m = at.loc[(subject.label, "L2M")]
measured = {
    "l2m_trained": l2m.value, "l2m_trained_ci": f"[{l2m.low:.3f}, {l2m.high:.3f}]",
    "l2m_random": cell(random_label, "L2M"), "l2m_ref": cell(ref_label, "L2M"),
    "cone_img_trained": cell(subject.label, "cone (image)"),
    "cone_txt_trained": cell(subject.label, "cone (text)"),
    "cone_img_random": cell(random_label, "cone (image)"),
    "rmg_trained": cell(subject.label, "RMG"),
    "sep_trained": cell(subject.label, "linear separability"),
    "sep_shuffled": cell(subject.label, "separability, control task"),
}
for name, value in measured.items():
    glue(name, value)

# %% [markdown]
# Beside them, the values published for pretrained CLIP, and two verdicts for the prose.

# %%
glue("ref_l2m", gap.REFERENCE["L2M, CLIP ViT-B/32 on MSCOCO"][0])
glue("ref_cone_img", gap.REFERENCE["image cone, pretrained CLIP on MSCOCO"][0])
glue("ref_cone_txt", gap.REFERENCE["text cone, pretrained CLIP on MSCOCO"][0])
# RMG above 0.5 means matched pairs are less similar than two random embeddings of one modality.
glue("rmg_relation", "less" if cell(subject.label, "RMG") > 0.5 else "more")
glue("l2m_target", "inside" if 0.5 <= cell(subject.label, "L2M") <= 1.0 else "outside")

# %% [markdown]
# The trained model's L2M is {glue:text}`l2m_trained:.2f` (95% bootstrap interval over test pairs
# {glue:text}`l2m_trained_ci`), beside the {glue:text}`ref_l2m:.2f` {cite:t}`liang2022mind`
# measured for CLIP ViT-B/32 on MSCOCO; it is {glue:text}`l2m_target` the range 0.5 to 1.0 this
# book asks of its subject model.
# Its relative modality gap is {glue:text}`rmg_trained:.2f`: an image is
# {glue:text}`rmg_relation` similar to its own caption than, on average, to another image or a
# caption to another caption.
# At random initialisation the same architecture already has a gap of {glue:text}`l2m_random:.2f`,
# and the untrained ViT-B/32 one of {glue:text}`l2m_ref:.2f`: the gap is there before any training.
# A linear probe tells the two modalities apart with held-out accuracy {glue:text}`sep_trained:.3f`.
# As a control, the same probe on labels swapped at random within each pair (in training and test
# alike) scores {glue:text}`sep_shuffled:.3f`, chance level, so the separability is not an artefact
# of the split.

# %% [markdown]
# The intervals above cover the choice of test pairs, not the training run.
# Retraining with other seeds shows how much the gap itself moves from run to run.
# Each retrained model is scored on its own test pairs by its L2M and by the zero-shot accuracy of
# its weakest always-named factor.

# %%
def retrained(k):
    """The small CLIP retrained with seed S.seed + k: its L2M and weakest always-named factor."""
    run = training.cached_clip(dataclasses.replace(S.train_config(), seed=S.seed + k),
                                device=S.device)
    d = experiment.test_data(dataclasses.replace(S, seed=S.seed + k), run.clip)
    zs = evaluation.zero_shot(run.clip, d.x, d.factors)
    return {"seed": S.seed + k, "L2M": gap.l2m(d.x, d.y), "zero-shot, weakest always-named factor":
            zs[zs.factor.isin(world.ALWAYS_NAMED)].accuracy.min()}


# %%
if S.trains_small_clip and S.on_world:
    seeds_table = pd.DataFrame([retrained(k) for k in range(n_seeds)]).set_index("seed")
    display(seeds_table)
    spread = (f"Over {n_seeds} training seeds, L2M ranges from {seeds_table.L2M.min():.2f} to "
              f"{seeds_table.L2M.max():.2f}" if n_seeds > 1 else
              "Only one training seed ran, so this profile shows no seed-to-seed spread")
else:
    spread = ("Retraining applies only to the small CLIP trained here, so there is no seed-to-seed "
              "spread")
glue("seed_spread", spread)

# %% [markdown]
# {glue:text}`seed_spread` (the `ci` profile trains one seed to stay within its time budget; the
# `full` profile trains three).

# %% [markdown]
# ## Seeing the gap
#
# A two-dimensional projection (the top two principal components of both modalities together) shows
# the two clouds, with a few matched pairs joined by lines ({numref}`fig-gap-projections`).

# %% mystnb={"figure": {"caption": "Image and text embeddings on their top two principal components, one panel per model: the two modalities sit apart, and grey lines join a few matched pairs.", "name": "fig-gap-projections"}}
plots.gap_projections({label: (d.x, d.y) for label, d in embedded.items()})
plt.show()

# %% [markdown]
# ## The cone effect
#
# The histograms of {numref}`fig-gap-cones` show cosine similarities between two different
# embeddings of one modality, and between matched image-caption pairs.
# A narrow cone means high within-modality similarity.

# %% mystnb={"figure": {"caption": "Cosine similarities between two images, between two captions and between matched pairs, one panel per model.", "name": "fig-gap-cones"}}
plots.cone_histograms({label: (d.x, d.y) for label, d in embedded.items()}, seed=S.seed)
plt.show()

# %% [markdown]
# In the trained model the mean image-image cosine is {glue:text}`cone_img_trained:.2f` and the mean
# text-text cosine {glue:text}`cone_txt_trained:.2f`; {cite:t}`liang2022mind` report
# {glue:text}`ref_cone_img:.2f` and {glue:text}`ref_cone_txt:.2f` for pretrained CLIP on MSCOCO.
# At random initialisation the image cone is {glue:text}`cone_img_random:.2f`.

# %% [markdown]
# ## Why does the small CLIP keep a gap?
#
# The contrastive loss only asks each image to be closer to its own caption than to the other
# captions in the batch; it never asks the two modalities to overlap.
# A randomly initialised model starts with its images and texts in two different narrow cones, and
# two choices of this book's recipe keep them apart, as they do in real CLIP: the temperature is
# fixed low ({glue:text}`temperature`), so once a pair is ranked correctly it stops pulling the cones
# together, and each modality carries factors the other mostly lacks (captions name size, position
# and background only now and then; images show tone, time, place and season only now and then)
# {cite}`schrodi2025two`.
# {doc}`05_why_the_gap` varies both causes, and the learned temperature of open_clip's default
# recipe, over several seeds.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-gap-1
# L2M compares the two centroids; L2I and RMG compare each image with *its own* caption.
# Shuffle the caption embeddings across pairs and recompute the metrics of `gap.METRICS` for the
# trained model.
# Which of them change, and why?
# ```
#
# ```{solution-start} ex-gap-1
# :class: dropdown
# ```

# %%
import numpy as np

shuffle = np.random.default_rng(S.seed).permutation(len(test.y))
versus = pd.DataFrame({name: {"matched": fn(test.x, test.y),
                              "shuffled": fn(test.x, test.y[shuffle])}
                       for name, fn in gap.METRICS.items()}).T
changed = [m for m in versus.index if not np.isclose(*versus.loc[m])]
glue("ex_gap_changed", ", ".join(changed) or "none")
versus.style.format(precision=3)

# %% [markdown]
# Only the metrics that pair image $i$ with caption $i$ change ({glue:text}`ex_gap_changed`):
# the centroids and the cones do not depend on which caption belongs to which image, so L2M says
# nothing about whether the pairs were learned.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-gap-2
# Close the gap by hand: subtract the gap vector `gap.gap_vector(x, y)` from every unit image
# embedding, renormalise, and recompute `gap.gap_metrics`.
# Does a small L2M make the two modalities impossible to tell apart?
# ```
#
# ```{solution-start} ex-gap-2
# :class: dropdown
# ```

# %%
xn, yn = gap.normalize(test.x), gap.normalize(test.y)  # the metrics work on unit embeddings
shifted = gap.normalize(xn - gap.gap_vector(xn, yn))
moved = pd.DataFrame({"original": gap.gap_metrics(test.x, test.y, seed=S.seed),
                      "images shifted": gap.gap_metrics(shifted, test.y, seed=S.seed)})
glue("ex_shift_l2m", moved.loc["L2M", "images shifted"])
glue("ex_shift_sep", moved.loc["linear separability", "images shifted"])
moved.style.format(precision=3)

# %% [markdown]
# The shift brings L2M down to {glue:text}`ex_shift_l2m:.3f`, and the probe scores
# {glue:text}`ex_shift_sep:.2f` (chance 0.5).
# A score well above chance means the modalities differ by more than one offset vector: moving the
# centroids together is not the same as mixing the clouds.
# {doc}`A later chapter <06_closing_the_gap>` shifts along the gap in the same way and measures what
# that does to the model's tasks.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-gap-3
# Some captions name the object's size and some do not.
# Compute L2I, the mean distance between an image and its own caption, on each of the two subsets
# of the test pairs.
# Do captions that say more sit closer to their images?
# ```
#
# ```{solution-start} ex-gap-3
# :class: dropdown
# ```

# %%
if S.on_world:
    named = test.factors["mentioned_size"].to_numpy(dtype=bool).copy()
    subsets = {"caption names the size": named, "caption does not": ~named}
    l2i = pd.Series({k: gap.l2i(test.x[m], test.y[m]) for k, m in subsets.items() if m.any()})
    glue("ex_closer", l2i.idxmin())
    display(l2i.to_frame("L2I").style.format(precision=3))
else:
    glue("ex_closer", "(no factor labels for a CSV dataset)")

# %% [markdown]
# The subset whose images sit closer to their captions is: {glue:text}`ex_closer`.
# A caption that names more of what the image shows shares more of its content, so the pull of the
# contrastive loss can bring the pair closer; the gap is partly a gap in information.
#
# ```{solution-end}
# ```
