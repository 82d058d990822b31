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
# (adapter-vlm)=
# # The gap inside an adapter VLM
#
# Every chapter so far studied a contrastive model: two towers, two embeddings, one gap between
# them. Most vision-language models people talk to are built differently. LLaVA and its relatives
# take a vision encoder's patch tokens, pass them through a small projector, and feed them to a
# language model as if they were words. The overview of the gap in such models
# {cite:p}`modalitygapoverview2025` gathers four claims: the projected visual tokens sit in a narrow
# cone nearly orthogonal to the text token embeddings; decoded straight to the vocabulary they mean
# nothing; image-text similarity rises with depth and peaks in middle-to-late layers; and when the
# image and the text disagree, the model follows the text.
#
# This chapter builds a small adapter VLM on the world, with LLaVA's recipe at toy scale, and
# measures each claim with seeds, intervals and a control.
#
# :::{admonition} What you will learn
# - how an adapter VLM is put together and trained: a frozen image tower, a projector, a language
#   model, in LLaVA's three phases;
# - how to measure the cone of visual tokens and its angle to the text token embeddings;
# - how to read visual tokens through the language model's head, layer by layer (the logit lens);
# - why image-text similarity that rises with depth needs an unmatched-pairs control;
# - how to test text dominance with conflicting captions, and what an attention intervention buys.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig
profile = "ci"  # the profile that set these values (for the record)
n_seeds = 3  # seeds of the adapter VLM (seed, seed + 1, ...)
n_vlm_pairs = 6000  # world pairs the VLM trains on
n_probe = 500  # held-out images every measurement uses
projector = "mlp2"  # "mlp2" (LLaVA 1.5: Linear, GELU, Linear) or "linear" (LLaVA 1.0)
d_model = 64  # width of the language model
n_layers = 4  # its transformer layers
vlm_steps = [300, 150, 300]  # steps of the three phases: language model, alignment, tuning
context_share = 0.5  # share of tuning questions preceded by the image's own caption
boosts = [2.0, 4.0, 16.0]  # factors on the attention text tokens pay to visual tokens

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from mdsgap import experiment, plots, stats, vlm, world
from mdsgap.vlm import adapter_gap
from mdsgap.book import check_declared, glue

# %%
S = experiment.ExperimentConfig.from_params(globals())
check_declared(globals(), dict(
    n_seeds=int, n_vlm_pairs=int, n_probe=int, projector=str, d_model=int, n_layers=int,
    vlm_steps=list, context_share=float, boosts=list))
experiment.needs_world(S, "the world's factors (its VLM is asked about them; for a real LLaVA see "
                        "mdsgap.vlm.llava, in the last section)")
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## A small LLaVA on the world
#
# The image tower is the CLIP of {doc}`01_measuring_gap`, frozen. Its patch tokens (the outputs of
# the vision transformer before pooling) go through a projector into a causal language model over
# the world's words, whose output head is tied to its token embeddings. Training follows LLaVA:
# the language model first learns captions alone; then only the projector learns, on captioning
# (the alignment phase); then projector and language model learn together to answer questions
# such as "what colour is the shape ?", where a share {glue:text}`context_share:.2f` of the
# questions is preceded by the image's own caption.

# %%
subject = experiment.subject(S)
vocab = vlm.Vocab.from_world()
train = world.generate(world.WorldConfig(), n_vlm_pairs, seed=S.seed, split="vlm")
probe = world.generate(world.WorldConfig(), n_probe, seed=S.seed, split="vlm-probe")
patches = vlm.patch_tokens(subject.clip, train.images)
probe_patches = vlm.patch_tokens(subject.clip, probe.images)
data = {"world": "default", "n": n_vlm_pairs, "seed": S.seed, "split": "vlm"}
glue("context_share", context_share)
glue("d_model", d_model)
glue("n_patches", patches.shape[1])
glue("n_words", len(vocab))

# %%
seeds = [S.seed + i for i in range(n_seeds)]
models, curves = {}, []
for s in seeds:
    cfg = vlm.VLMConfig(projector=projector, d_model=d_model, n_layers=n_layers,
                        max_len=patches.shape[1] + vlm.RecipeConfig.max_text, seed=s)
    models[s], curve = vlm.fit(subject.clip.identity, data, vocab, patches, train.captions,
                               train.factors, cfg, vlm.stages(vlm_steps, context_share, s))
    curves.append(curve.assign(seed=s))
curves = pd.concat(curves, ignore_index=True)

# %% [markdown]
# Each image becomes {glue:text}`n_patches` visual tokens, followed by words from a vocabulary of
# {glue:text}`n_words`. {numref}`fig-vlm-curves` shows the three phases of training.

# %% mystnb={"figure": {"caption": "Training loss of the adapter VLM for each seed, by phase: the language model on captions, the projector alone on captioning (alignment), then both on questions (loss on the answer only).", "name": "fig-vlm-curves"}}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, (phase, d) in zip(axes, curves.groupby("phase", sort=False)):
    sns.lineplot(data=d, x="step", y="loss", hue="seed", ax=ax, palette="deep",
                 legend=ax is axes[0])
    ax.set(title=phase)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Does it answer?
#
# Each model answers the three questions about {glue:text}`n_probe` held-out images with one word.
# Two controls: the language model alone, without the image (whatever it gets right, the question
# gave away), and the model shown another image of the set (what it gets right from the answers'
# frequencies). Intervals here and below are 95% t-intervals over the seeds (`stats.interval`), whose
# coverage the tests check on simulated experiments.

# %%
rows, other = [], np.random.default_rng(S.seed).permutation(n_probe)
for s in seeds:
    seen = adapter_gap.accuracy(models[s], vocab, probe_patches, probe.factors)
    blind = adapter_gap.accuracy(models[s], vocab, None, probe.factors)
    wrong = adapter_gap.accuracy(models[s], vocab, probe_patches[other], probe.factors)
    rows += [{"seed": s, "factor": f, "with the image": seen[f], "without it": blind[f],
              "another image": wrong[f], "chance": 1 / len(world.FACTOR_BY_NAME[f].values)}
             for f in seen]
answered = stats.intervals(pd.DataFrame(rows), ["factor"],
                           ["with the image", "without it", "another image", "chance"])
glue("n_probe", n_probe)
asked = answered[answered.quantity != "chance"]
chance = answered[answered.quantity == "chance"].value.round(3).to_numpy()
stats.formatted(asked, "factor").assign(chance=chance)

# %%
acc = answered.set_index(["factor", "quantity"])
for f in dict.fromkeys(answered.factor):
    for key, q in (("acc", "with the image"), ("blind", "without it"), ("other", "another image"),
                   ("chance", "chance")):
        glue(f"{key}_{f}", acc.loc[(f, q), "value"])
    glue(f"acc_{f}_low", acc.loc[(f, "with the image"), "low"])
    glue(f"acc_{f}_high", acc.loc[(f, "with the image"), "high"])
acc = acc.value.unstack().join(acc.low.unstack()["with the image"].rename("with the image low"))
from_image = (acc[["without it", "another image"]].max(axis=1) < acc["with the image low"]).all()
glue("from_image", "yes" if from_image else "no")

# %% [markdown]
# The models name the colour right {glue:text}`acc_colour:.2f` of the time
# ({glue:text}`acc_colour_low:.2f` to {glue:text}`acc_colour_high:.2f` over seeds; chance
# {glue:text}`chance_colour:.2f`), the shape {glue:text}`acc_shape:.2f`
# ({glue:text}`acc_shape_low:.2f` to {glue:text}`acc_shape_high:.2f`; chance
# {glue:text}`chance_shape:.2f`) and the size {glue:text}`acc_size:.2f` (chance
# {glue:text}`chance_size:.2f`). Without the image the language model gets the colour right
# {glue:text}`blind_colour:.2f` and the shape {glue:text}`blind_shape:.2f` of the time, and shown
# another image {glue:text}`other_colour:.2f` and {glue:text}`other_shape:.2f`. Is every question
# answered less well without the image, or with another, than the lower end of its interval with
# it? **{glue:text}`from_image`** (yes: the answers come from the image; no: for some questions the
# words alone give part of the answer away). {numref}`fig-vlm-answers` shows a few.

# %% mystnb={"figure": {"caption": "Held-out world images with the first seed's answers to the three questions (colour, shape, size).", "name": "fig-vlm-answers"}}
shown = slice(0, 6)
said = {f: vlm.answers(models[seeds[0]], vocab, probe_patches[shown], [q] * 6)
        for f, q in vlm.QUESTIONS.items()}
caps = [" / ".join(said[f][i] for f in vlm.QUESTIONS) for i in range(6)]
plots.image_grid(probe.images[shown], caps, ncols=6)
plt.show()

# %% [markdown]
# ## Claim 1: a narrow cone, nearly orthogonal to the text
#
# The overview {cite:p}`modalitygapoverview2025`, after Shukor et al., describes the projected
# visual tokens as a narrow cone nearly orthogonal to the text token embeddings. Four numbers per
# model measure it: the cone of each set (the mean cosine between two of its members,
# {doc}`01_measuring_gap`'s measure), the angle between the two sets' mean directions, and the mean
# cosine between a visual token and a word (the cross cosine). The
# visual tokens are those of the held-out images; the text tokens are the held-out captions' words
# as the language model embeds them. The control is the same model with its projector as it was
# before training.

# %%
ids = vocab.batch(list(probe.captions), vlm.RecipeConfig.max_text)
geo = []
for s in seeds:
    torch.manual_seed(models[s].cfg.seed)  # as fit does: the projector as it was before training
    fresh = vlm.AdapterVLM(len(vocab), patches.shape[-1], models[s].cfg)
    fresh.lm.load_state_dict(models[s].lm.state_dict())
    for name, m in (("trained", models[s]), ("projector untrained", fresh)):
        geo.append({"seed": s, "model": name, **adapter_gap.token_geometry(m, probe_patches, ids)})
values = ["visual cone", "text cone", "angle", "cross cosine"]
geometry = stats.intervals(pd.DataFrame(geo), ["model"], values)
stats.formatted(geometry, "model")

# %% mystnb={"figure": {"caption": "The first seed's projected visual tokens (a sample from the held-out images) and the text token embeddings of the held-out captions, each scaled to unit length, in the plane of their two mean directions: x along the text mean, y along the part of the visual mean orthogonal to it.", "name": "fig-vlm-cones"}}
plots.token_plane(*adapter_gap.tokens(models[seeds[0]], probe_patches, ids))
plt.show()

# %%
g = geometry.set_index(["model", "quantity"])
for key, name in (("vis_cone", "visual cone"), ("txt_cone", "text cone"), ("angle", "angle")):
    for m, tag in (("trained", ""), ("projector untrained", "_fresh")):
        for end, suffix in (("value", ""), ("low", "_low"), ("high", "_high")):
            glue(f"{key}{tag}{suffix}", g.loc[(m, name), end])
ORTHO = 20  # degrees from 90 within which we call two directions nearly orthogonal (our choice)


def passes(m):
    """Claim 1's two tests on a row of `geometry`: narrower than the text, near 90 degrees."""
    narrow = g.loc[(m, "visual cone"), "low"] > g.loc[(m, "text cone"), "high"]
    return narrow, all(abs(g.loc[(m, "angle"), end] - 90) < ORTHO for end in ("low", "high"))


# %%
narrow, ortho = passes("trained")
glue("ortho", ORTHO)
glue("claim1", "confirmed" if narrow and ortho else "not confirmed")
glue("claim1_narrow", "narrower than" if narrow else "not narrower than")
glue("claim1_ortho", "within" if ortho else "not within")
moved = g.loc[("projector untrained", "angle"), "value"] - g.loc[("trained", "angle"), "value"]
glue("angle_moved", abs(moved))
glue("angle_way", "toward" if moved > 0 else "away from")
glue("null_sd", float(np.degrees(1 / np.sqrt(d_model))))

# %%
glue("fresh_passes", "yes" if all(passes("projector untrained")) else "no")

# %% [markdown]
# The visual tokens of the trained models have a cone of {glue:text}`vis_cone:.2f`
# ({glue:text}`vis_cone_low:.2f` to {glue:text}`vis_cone_high:.2f` over seeds), against
# {glue:text}`txt_cone:.2f` for the text token embeddings: the visual cone is
# {glue:text}`claim1_narrow` the text's. The angle between their mean directions is
# {glue:text}`angle:.0f` degrees ({glue:text}`angle_low:.0f` to {glue:text}`angle_high:.0f`),
# {glue:text}`claim1_ortho` {glue:text}`ortho` degrees of orthogonal, the threshold this chapter
# chose; two random directions in {glue:text}`d_model` dimensions lie about
# {glue:text}`null_sd:.0f` degrees either side of 90, so near-orthogonality is what unrelated
# directions show. The first claim is **{glue:text}`claim1`** here. With its projector as it was
# before training, the same model gives a cone of {glue:text}`vis_cone_fresh:.2f` at
# {glue:text}`angle_fresh:.0f` degrees ({glue:text}`angle_fresh_low:.0f` to
# {glue:text}`angle_fresh_high:.0f`). Does it pass both tests too? **{glue:text}`fresh_passes`**
# (yes: the narrow, nearly orthogonal cone is there before any training; no: training made the
# picture above). Training turned the visual mean {glue:text}`angle_moved:.0f` degrees
# {glue:text}`angle_way` the text. {numref}`fig-vlm-cones`
# draws the two sets in the plane of their means.

# %% [markdown]
# ## Claim 2: visual tokens decoded to words
#
# The language model's head turns a hidden state into a word: the final layer norm, then the
# transposed token embeddings. Applied to the visual tokens themselves (layer 0) and to their
# hidden states after each layer (the logit lens), it says which word each visual token is
# closest to. A decoded word that names a value of the token's own image (its colour, shade, tint,
# shape, size, position or background) is a hit; the control scores the same words against a
# shuffled image.

# %%
lens = []
for s in seeds:
    decoded = adapter_gap.lens_words(models[s], vocab, probe_patches)
    lens.append(adapter_gap.lens_hits(decoded, vocab, probe.factors, seed=s).assign(seed=s))
lens_raw = pd.concat(lens)
lens = stats.intervals(lens_raw, ["layer"], ["own image", "shuffled image", "any value"])
lens_vs = stats.paired(lens_raw, ["layer"], "own image", "shuffled image").relation

# %%
lens_at = lens.pivot(index="layer", columns="quantity", values="value").reset_index()
first, last = lens_at.iloc[0], lens_at.iloc[-1]
ends = (("lens0", first), ("lens_last", last))
vs = {"lens0": lens_vs.iloc[0], "lens_last": lens_vs.iloc[-1]}
for k, row in ends:
    glue(k, row["own image"])
    glue(f"{k}_shuffled", row["shuffled image"])
    glue(f"{k}_vs", vs[k])
glue("lens0_any", first["any value"])
glue("n_last", int(last.layer))
glue("claim2", "confirmed" if vs["lens0"] != "above" else "contradicted")

# %%
above_from = [k for k in range(len(lens_vs)) if (lens_vs.iloc[k:] == "above").all()]
glue("lens_from", above_from[0] if above_from else "none")

# %% mystnb={"figure": {"caption": "Visual tokens read through the language model's head after each layer (0 = the projected tokens): the share whose word names a value of their own image, of a shuffled image (the control), and of any image; means over seeds with 95% bands.", "name": "fig-vlm-lens"}}
plots.per_layer(lens, ("own image", "shuffled image", "any value"), ylabel="share of visual tokens")
plt.show()

# %% [markdown]
# Read straight from the projector, a visual token names a value of its own image
# {glue:text}`lens0:.2f` of the time, against {glue:text}`lens0_shuffled:.2f` for a shuffled image
# ({glue:text}`lens0_vs` it, comparing within each seed), although {glue:text}`lens0_any:.2f` of the
# tokens decode to some value word. The second claim is **{glue:text}`claim2`** at the input
# (confirmed: no evidence that they name their image). Deeper in the model
# ({numref}`fig-vlm-lens`), after layer {glue:text}`n_last` the share is {glue:text}`lens_last:.2f`
# against {glue:text}`lens_last_shuffled:.2f`: **{glue:text}`lens_last_vs`** it (above: the
# language model has turned the visual tokens into words of their image by its last layer). The
# first layer from which the own image leads the control to the end: {glue:text}`lens_from`.

# %% [markdown]
# ## Claim 3: image-text similarity across depth
#
# For each image and its caption, run the image alone and the caption alone through the language
# model, average each one's hidden states over its positions, and take the cosine between the two
# averages at every layer. The claim is that this similarity rises with depth. The control is the
# same cosine for an image and another image's caption: if it rises as much, the rise is a
# direction every input comes to share, not alignment of an image with its own caption. The
# centred version subtracts each side's mean state first, which removes that shared direction.

# %%
sims = {"raw": [], "centred": []}
for s in seeds:
    for kind in sims:
        t = adapter_gap.layer_similarity(models[s], probe_patches, ids, seed=s,
                                         centre=kind == "centred")
        sims[kind].append(t.assign(seed=s))
sims = {k: stats.intervals(pd.concat(v), ["layer"], ["matched", "unmatched", "margin"])
        for k, v in sims.items()}
raw, centred = sims["raw"], sims["centred"]

# %% mystnb={"figure": {"caption": "Cosine between an image's and a caption's hidden states (each averaged over its positions) after each layer: raw, for matched and unmatched pairs (left), and centred, as the margin of matched over unmatched pairs (right); means over seeds with 95% bands.", "name": "fig-vlm-depth"}}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
plots.per_layer(raw, ("matched", "unmatched"), "raw", "cosine", ax=axes[0])
plots.per_layer(centred, ("margin",), "centred", "matched minus unmatched", ax=axes[1])
axes[1].axhline(0, color="grey", lw=0.8)
plt.show()

# %%
depth = adapter_gap.depth_verdict(raw, centred)
for key, value in depth.items():
    glue(f"depth_{key}", value)
glue("depth_shared", depth["rise_unmatched"] / max(depth["rise"], 1e-9))
matched = raw[raw.quantity == "matched"].value
glue("depth_first", matched.iloc[0])
glue("depth_last", matched.iloc[-1])
late = (depth["peak_above_zero"] and depth["peak_above_input"]
        and 2 * depth["peak_layer"] >= depth["n_layers"])
glue("claim3", "not confirmed" if not depth["rises"] else "confirmed" if late else
     "confirmed for the raw cosine, but the pair-specific margin peaks early" if
     depth["peak_above_zero"] else "confirmed only as a direction unmatched pairs share too")
glue("depth_peak_is", "above" if depth["peak_above_zero"] else "not above")
glue("depth_climbs", "climbs" if depth["rise"] > 0 else "falls")
glue("depth_vs_input", "above" if depth["peak_above_input"] else "not above")

# %% [markdown]
# The raw similarity of matched pairs {glue:text}`depth_climbs` from {glue:text}`depth_first:.2f` at
# the input to
# {glue:text}`depth_last:.2f` after the last layer (a rise of {glue:text}`depth_rise:.2f`), and that
# of unmatched pairs climbs by {glue:text}`depth_rise_unmatched:.2f`, that is
# {glue:text}`depth_shared:.0%` of the matched rise: that much of it is a direction every image and
# every caption come to share. Centred, the margin of matched over unmatched pairs is
# {glue:text}`depth_input_margin:.3f` at the input ({glue:text}`depth_input_low:.3f` to
# {glue:text}`depth_input_high:.3f`) and at its highest, after layer {glue:text}`depth_peak_layer`
# of {glue:text}`depth_n_layers`, {glue:text}`depth_peak_margin:.3f`
# ({glue:text}`depth_peak_low:.3f` to {glue:text}`depth_peak_high:.3f`:
# {glue:text}`depth_peak_is` zero and {glue:text}`depth_vs_input` the input's interval). The third
# claim is
# **{glue:text}`claim3`** ({numref}`fig-vlm-depth`) on the centred margin; the raw cosine alone
# would not be evidence that images and their captions meet.

# %% [markdown]
# ## Claim 4: text dominance
#
# Give the model an image and, before the question, the image's own caption with one word changed:
# a red circle captioned "a calm pale blue circle tinted warm by day indoors in spring", then
# "what colour is the shape ?". An answer
# can follow the image, follow the text, or be neither. In training the caption, when present,
# always agreed with the image, so both routes were rewarded. The colour and the shape are the
# factors every caption names that the model is asked about.
#
# The intervention multiplies the attention that every text token pays to the visual tokens by a
# factor before the weights are renormalised, at every layer: the attention-scaling part of the
# training-free "pay more attention to the image" of {cite:t}`liu2024paying` (their method also
# chooses layers and contrasts with an image-free pass). Beside each conflict rate the table gives
# the accuracy without conflict under the same intervention, its cost.

# %%
interventions = {"none": {}, **{f"attention x{b:g}": {"attend_image": b} for b in boosts}}
runs = [adapter_gap.dominance(models[s], vocab, probe_patches, probe.factors,
                              interventions=interventions, seed=s).assign(seed=s) for s in seeds]
follow = stats.intervals(pd.concat(runs), ["factor", "intervention"],
                         ["image", "text", "other", "accuracy"])
stats.formatted(follow, ["factor", "intervention"])

# %% mystnb={"figure": {"caption": "Answers to a question whose caption contradicts the image: the share that follows the image, the text, or neither, for each factor, with no intervention and with the attention on visual tokens multiplied by each factor (means over seeds).", "name": "fig-vlm-dominance"}}
plots.follow_rates(follow)
plt.show()

# %%
verdicts = adapter_gap.dominance_verdicts(pd.concat(runs))
for f, v in verdicts.items():
    for key, value in v.items():
        glue(f"dom_{f}_{key}", value if not isinstance(value, bool) else
             ("beyond" if value else "not beyond"))
parts = {"confirmed": "the text", "contradicted": "the image", "unresolved": "neither clearly"}
sides = {side: [f for f, v in verdicts.items() if v["follows"] == side] for side in parts.values()}
claim4 = [f"{word} for the {' and the '.join(sides[side])}"
          for word, side in parts.items() if sides[side]]
glue("claim4", "; ".join(claim4))

# %%
worst = max(verdicts, key=lambda f: verdicts[f]["text"])
weakest = acc["with the image"].loc[list(verdicts)].idxmin()
glue("dom_weakest", weakest)
glue("dom_same", "no" if len({v["follows"] for v in verdicts.values()}) > 1 else "yes")

# %%
top = follow[(follow.factor == worst) & (follow.intervention == f"attention x{max(boosts):g}")]
top = top.set_index("quantity").value
glue("dom_top", f"x{max(boosts):g}")
glue("dom_top_other", float(top["other"]))
glue("dom_top_accuracy", float(top["accuracy"]))
glue("dom_worst", worst)
for key in ("text", "image", "best", "best_image", "best_text", "best_accuracy", "accuracy"):
    glue(f"dom_worst_{key}", verdicts[worst][key])
glue("dom_worst_helps", "beyond" if verdicts[worst]["best_helps"] else "not beyond")

# %% [markdown]
# Asked the colour under a contradicting caption, the models follow the image
# {glue:text}`dom_colour_image:.2f` of the time ({glue:text}`dom_colour_image_low:.2f` to
# {glue:text}`dom_colour_image_high:.2f`) and the text {glue:text}`dom_colour_text:.2f`: they follow
# {glue:text}`dom_colour_follows`. Asked the shape, they follow the image
# {glue:text}`dom_shape_image:.2f` ({glue:text}`dom_shape_image_low:.2f` to
# {glue:text}`dom_shape_image_high:.2f`) and the text {glue:text}`dom_shape_text:.2f`
# ({glue:text}`dom_shape_text_low:.2f` to {glue:text}`dom_shape_text_high:.2f`): they follow
# {glue:text}`dom_shape_follows`. The fourth claim is **{glue:text}`claim4`** here. The factor
# whose answers follow the text most is the {glue:text}`dom_worst`; the one the model reads least
# well from the image alone is the {glue:text}`dom_weakest` (colour right
# {glue:text}`acc_colour:.2f` of the time without conflict, shape {glue:text}`acc_shape:.2f`). Do
# the answers follow the same side for every factor asked here? **{glue:text}`dom_same`** (two
# factors are few to generalise from).
#
# For the {glue:text}`dom_worst`, the intervention that sends most answers to the image is
# {glue:text}`dom_worst_best` ("none": no intervention does better): the image's share moves from
# {glue:text}`dom_worst_image:.2f` to {glue:text}`dom_worst_best_image:.2f`
# ({glue:text}`dom_worst_helps` no intervention, comparing within each seed)
# and the text's from {glue:text}`dom_worst_text:.2f` to {glue:text}`dom_worst_best_text:.2f`, while
# accuracy without conflict goes from {glue:text}`dom_worst_accuracy:.2f` to
# {glue:text}`dom_worst_best_accuracy:.2f`. At the largest factor, {glue:text}`dom_top`, a share
# {glue:text}`dom_top_other:.2f` of the answers follow neither side and accuracy without conflict
# is {glue:text}`dom_top_accuracy:.2f` ({numref}`fig-vlm-dominance`): more attention on the image
# cannot supply more than the model can read from it.

# %% [markdown]
# ## Two kinds of gap
#
# The contrastive gap of {doc}`01_measuring_gap` lives between two towers' final embeddings; the
# adapter's lives between the projected visual tokens and the language model's own word
# embeddings, at its input. The same four numbers describe both:

# %%
clip_test = experiment.test_data(S, subject.clip)
clip_geo = adapter_gap.geometry(clip_test.x, clip_test.y)
both = pd.DataFrame({"CLIP (image vs text embeddings)": clip_geo,
                     "adapter VLM (visual vs text tokens)": g.loc["trained"].value[values]}).T
glue("clip_angle", clip_geo["angle"])
glue("clip_img_cone", clip_geo["visual cone"])
glue("clip_txt_cone", clip_geo["text cone"])
glue("clip_cross", clip_geo["cross cosine"])
glue("vlm_cross", g.loc[("trained", "cross cosine"), "value"])
both.rename(columns={"visual cone": "image-side cone", "text cone": "text-side cone"}).round(3)

# %% [markdown]
# The CLIP's image and text embeddings have cones of {glue:text}`clip_img_cone:.2f` and
# {glue:text}`clip_txt_cone:.2f` with means {glue:text}`clip_angle:.0f` degrees apart; the adapter's
# visual tokens have a cone of {glue:text}`vis_cone:.2f` against {glue:text}`txt_cone:.2f` for the
# words, {glue:text}`angle:.0f` degrees apart. The contrastive gap is a shift between two cones that
# training pulls toward each other, pair by pair; the adapter's is the angle between the projector's
# outputs and a word space the projector was never asked to match: it was trained only to make the
# language model predict the right next word. Nothing in LLaVA's loss asks a visual token to
# resemble a word (the mean cosine between a visual token and a word is {glue:text}`vlm_cross:.3f`,
# against {glue:text}`clip_cross:.3f` between the CLIP's images and captions, in spaces of
# different widths), so the adapter's gap reads less as a failure of alignment than as its absence
# at the input; what the model makes of the visual tokens is decided deeper in, where the lens and
# the depth measurements above look.

# %% [markdown]
# ## What this says
#
# | claim of the overview | on this small LLaVA |
# |---|---|
# | visual tokens form a narrow cone nearly orthogonal to the text embeddings | {glue:text}`claim1` |
# | decoded straight to the vocabulary they mean nothing | {glue:text}`claim2` at the input |
# | image-text similarity rises with depth, peaking in middle-to-late layers | {glue:text}`claim3` |
# | under conflicting inputs the model follows the text | {glue:text}`claim4` |
#
# The model is tiny and its words few, and that is the point: every claim can be checked against the
# values that made each image, with seeds and a control. The controls qualify two of the claims:
# after the last layer the lens reads a token's own image {glue:text}`lens_last_vs` the control
# (above: "meaningless" does not hold there), and {glue:text}`depth_shared:.0%` of the rise in raw
# similarity is shared by unmatched pairs. The answers follow the same side for every factor
# asked: {glue:text}`dom_same`. The choices are this book's: the word-level
# language model, the size of the projector's input (CLIP's patch tokens), the share of captions in
# tuning ({glue:text}`context_share:.2f`), the {glue:text}`ortho`-degree threshold, and the conflict
# prompts. The parameters `projector` ("linear" is LLaVA 1.0's), `context_share` and `vlm_steps`
# rerun the chapter with others.
#
# ## A real LLaVA
#
# The same measurements run on a Hugging Face LLaVA checkpoint saved in a local folder, through
# `mdsgap.vlm.llava` (tested on a tiny LLaVA built from configs). With its processor's `input_ids`
# (the image placeholder repeated once per visual token) and `pixel_values`:
#
# ```python
# from mdsgap.vlm import adapter_gap, llava
#
# model, processor = llava.load("/path/to/llava-1.5-7b-hf")
# batch = processor(images=images, text=["USER: <image>\nASSISTANT:"] * len(images),
#                   return_tensors="pt")
# captions = processor.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
# visual = llava.layer_means(model, batch.input_ids, batch.pixel_values)
# text = llava.layer_means(model, captions.input_ids, attention_mask=captions.attention_mask)
# adapter_gap.similarity_by_layer(visual, text, centre=True)    # claim 3, with its control
# llava.token_geometry(model, batch.pixel_values, captions.input_ids,
#                      captions.attention_mask)                  # claim 1
# llava.lens_ids(model, batch.input_ids, batch.pixel_values)    # claim 2: decode with the tokenizer
# ```
#
# Claim 4 needs only generation with conflicting captions (`model.generate`), and the attention
# intervention needs a hook on the language model's attention; neither is in the package yet.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-vlm-1
# The attention boost is one intervention from the literature; two others act on the visual tokens
# themselves: scaling them, and adding them again to the residual stream after a middle layer
# ("back-patching"). On the first seed, measure the shape conflict under `visual_scale=4` and under
# `reinject=2`, and compare with no intervention.
# ```
#
# ```{solution-start} ex-vlm-1
# :class: dropdown
# ```

# %%
others = {"none": {}, "scale x4": {"visual_scale": 4.0}, "re-inject after layer 2": {"reinject": 2}}
adapter_gap.dominance(models[seeds[0]], vocab, probe_patches, probe.factors, names=("shape",),
                      interventions=others, seed=seeds[0]).set_index("intervention").round(3)

# %% [markdown]
# Compare each row with "none": the image's share, the text's, and the accuracy without conflict.
# Scaling changes the size of the visual tokens but not what they say, so a model can read louder
# tokens worse; re-injection repeats what the layers have already seen. The attention boost of the
# chapter acts elsewhere, on how much the text attends to the image.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-vlm-2
# Which factors do the visual tokens name when the lens reads them after the last layer? For the
# first seed, count the decoded words by the factor whose value they name (or "none").
# ```
#
# ```{solution-start} ex-vlm-2
# :class: dropdown
# ```

# %%
decoded = adapter_gap.lens_words(models[seeds[0]], vocab, probe_patches)[-1].flatten()
owner = {w: f.name for f in world.FACTORS for v in f.values for w in vlm.words(str(v))}
named = pd.Series([owner.get(vocab.tokens[t], "none") for t in decoded.tolist()])
named.value_counts(normalize=True).round(3).to_frame("share of visual tokens")

# %% [markdown]
# The factors that dominate the list are those the visual tokens most readily turn into words,
# which need not be those the questions ask about; compare them with the accuracies of the answers.
#
# ```{solution-end}
# ```
