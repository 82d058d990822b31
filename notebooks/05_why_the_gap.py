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
# (why-the-gap)=
# # Why the gap exists
#
# Three causes of the modality gap have been shown on real CLIPs, and each can be switched on and
# off in the world:
#
# 1. **the cone effect**: a network at random initialisation already maps its inputs into a narrow
#    cone, a different one for every initialisation, so two separately initialised towers start
#    apart {cite}`liang2022mind`;
# 2. **the temperature**: contrastive training with a low temperature keeps the cones apart
#    {cite}`liang2022mind`;
# 3. **information imbalance**: captions that carry less than the image leave a larger gap
#    {cite}`schrodi2025two`.
#
# Each section measures one of them, over several seeds, beside the published numbers.
#
# :::{admonition} What you will learn
# - why a random network with ReLUs squeezes its inputs into a narrow cone, and why two towers
#   initialised separately start in different cones;
# - how to measure the effect of the training temperature on the gap, with confidence intervals
#   over seeds, beside the published curve;
# - how captions that name less of the image (information imbalance) change the gap;
# - why a gap that closes is not a sign that the model learned more, or less.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
n_seeds = 3  # seeds per sweep point
cone_depths = [1, 2, 4, 8, 12]  # depths of the random MLPs
cone_width = 256  # width of the random MLPs
n_cone_inputs = 1_000  # inputs fed to the random networks
tower_models = ["mdsgap-small", "mdsgap-tiny"]  # open_clip architectures measured at random init
n_tower_pairs = 256  # world pairs embedded by each random tower
temperatures = [1.0, 0.1, 0.03, 0.01]  # fixed temperatures of the temperature sweep
learned_temperature = True  # also train with open_clip's learned temperature (from 0.07)
mention_levels = [1.0, 0.5, 0.25]  # P(caption names colour, size, position); shape: always
sweep_temperature = 0.03  # temperature of the information-imbalance sweep
n_eval = 1_000  # held-out pairs per sweep CLIP

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from mdsgap import experiment, gap, stats, world
from mdsgap.clip import embeddings, evaluation, models, training
from mdsgap.gap import cones
from mdsgap.book import check_declared, glue

# %%
S = experiment.ExperimentConfig.from_params(globals())
check_declared(globals(), dict(
    n_seeds=int, cone_depths=list, cone_width=int, n_cone_inputs=int, tower_models=list,
    n_tower_pairs=int, temperatures=list, learned_temperature=bool, mention_levels=list,
    sweep_temperature=float, n_eval=int))
experiment.needs_world(S, "the world (it trains its CLIPs on it, one change at a time)")
seeds = [S.seed + i for i in range(n_seeds)]  # every sweep point is repeated for each seed
sns.set_theme(style="whitegrid", context="notebook")


# %%
def by_seed(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per value of `key`: mean L2M (value), its interval over seeds, mean zero-shot accuracy."""
    return pd.DataFrame([{key: v, **dict(zip(stats.COLUMNS, stats.interval(d.L2M))),
                          "zero-shot": d["zero-shot"].mean()}
                         for v, d in df.groupby(key)])


# %% [markdown]
# ## 1. The cone effect at random initialisation
#
# We feed the world's images (flattened pixels, {glue:text}`n_cone_inputs` of them) through random
# MLPs of growing depth, with and without a ReLU after each layer, and measure the cone: the mean
# cosine similarity between two different outputs. The layers have no biases and their weights keep
# the signal's scale (He initialisation before a ReLU, LeCun without), so any narrowing comes from
# the nonlinearity itself; with PyTorch's default initialisation and biases, the signal shrinks
# layer by layer until the biases dominate, and even a linear network collapses to a cone.

# %%
images = world.generate(world.WorldConfig(), n_cone_inputs, seed=S.seed, split="cones").images
inputs = torch.as_tensor(images, dtype=torch.float32).flatten(1) / 255
inputs = inputs - inputs.mean(0)  # centred pixels: the input cone is near 0
rows = []
for depth in cone_depths:
    for nonlinear in (True, False):
        values = [cones.mlp_cone(inputs, cone_width, depth, nonlinear, seed=s) for s in seeds]
        rows.append({"depth": depth, "layers": "Linear + ReLU" if nonlinear else "Linear only",
                     **dict(zip(stats.COLUMNS, stats.interval(values)))})
mlp = pd.DataFrame(rows)
glue("n_cone_inputs", n_cone_inputs)
glue("input_cone", round(gap.cone(inputs), 2) + 0.0)  # + 0.0: no "-0.00"

# %% mystnb={"figure": {"caption": "The cone (mean pairwise cosine of the outputs) of random MLPs against their depth, with and without a ReLU after each layer, mean and 95% interval over seeds; the dotted line is the cone of the inputs.", "name": "fig-why-cone-depth"}}
fig, ax = plt.subplots(figsize=(6, 3.6))
for layers, d in mlp.groupby("layers"):
    ax.errorbar(d.depth, d.value, yerr=[d.value - d.low, d.high - d.value], marker="o", capsize=3,
                label=layers)
ax.axhline(gap.cone(inputs), color="grey", ls=":", label="the inputs")
ax.set(xlabel="depth (layers)", ylabel="cone: mean pairwise cosine", ylim=(-0.05, 1.05))
ax.legend()
plt.show()

# %%
relu_deep = mlp[(mlp.layers == "Linear + ReLU") & (mlp.depth == max(cone_depths))].iloc[0]
lin_deep = mlp[(mlp.layers == "Linear only") & (mlp.depth == max(cone_depths))].iloc[0]
glue("max_depth", max(cone_depths))
glue("relu_cone", relu_deep.value)
glue("relu_cone_ci", f"[{relu_deep.low:.2f}, {relu_deep.high:.2f}]")
glue("linear_cone", round(lin_deep.value, 2) + 0.0)
glue("linear_cone_ci",
     f"[{round(lin_deep.low, 2) + 0.0:.2f}, {round(lin_deep.high, 2) + 0.0:.2f}]")
glue("n_seeds", n_seeds)

# %% [markdown]
# The centred inputs have a cone of {glue:text}`input_cone:.2f`. After {glue:text}`max_depth`
# random layers with ReLUs the cone is {glue:text}`relu_cone:.2f` (95% CI over
# {glue:text}`n_seeds` seeds {glue:text}`relu_cone_ci`); without the nonlinearity it is
# {glue:text}`linear_cone:.2f` ({glue:text}`linear_cone_ci`), as {numref}`fig-why-cone-depth` shows
# depth by depth. A ReLU keeps only the positive part of each coordinate, so every layer pushes its
# outputs into the positive orthant, and deeper networks into an ever narrower cone.
#
# ### Random towers, distinct cones
#
# The same holds for CLIP's own towers. Each architecture below is initialised at random with
# {glue:text}`n_seeds` seeds and embeds {glue:text}`n_tower_pairs` world pairs; the table gives the
# cones and the gap between the two random towers, and {numref}`fig-why-tower-directions` the cosine
# between the mean image directions of different seeds: the further below 1 off the diagonal, the
# more each initialisation has a cone of its own.

# %%
pairs = world.generate(world.WorldConfig(), n_tower_pairs, seed=S.seed, split="towers")
tower_rows, directions = [], {}
for name in tower_models:
    outs = []
    for s in seeds:
        clip = models.create_clip(name, "", seed=s, device=S.device)
        x, y = embeddings.encode_pairs(clip, pairs, progress=False)
        outs.append(x)
        tower_rows.append({"architecture": name, "seed": s, "cone (image)": gap.cone(x),
                           "cone (text)": gap.cone(y), "L2M": gap.l2m(x, y)})
    directions[name] = cones.cone_directions(outs).numpy()
towers = pd.DataFrame(tower_rows)
glue("n_tower_pairs", n_tower_pairs)

# %%
tower_columns = ["cone (image)", "cone (text)", "L2M"]
towers.groupby("architecture")[tower_columns].agg(["mean", "min", "max"]).style.format(precision=2)

# %% mystnb={"figure": {"caption": "Cosine between the mean image directions of randomly initialised towers of different seeds, one panel per architecture: off the diagonal, the further below 1, the more each initialisation has a cone of its own.", "name": "fig-why-tower-directions"}}
fig, axes = plt.subplots(1, len(directions), figsize=(4 * len(directions), 3.2), squeeze=False)
for ax, (name, m) in zip(axes[0], directions.items()):
    sns.heatmap(m, vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", cbar=False, ax=ax,
                xticklabels=seeds, yticklabels=seeds)
    ax.set(title=f"{name}: mean image directions", xlabel="seed", ylabel="seed")
fig.tight_layout()
plt.show()

# %%
parts = []
for name, m in directions.items():
    off = m[~np.eye(len(m), dtype=bool)]
    t = towers[towers.architecture == name]
    parts.append(f"{name}: image cone {t['cone (image)'].mean():.2f}, "
                 f"text cone {t['cone (text)'].mean():.2f}, L2M {t['L2M'].mean():.2f}, "
                 f"mean |cosine| between seeds' image directions "
                 f"{np.abs(off).mean() if len(off) else float('nan'):.2f}")
glue("tower_summary", "; ".join(parts))
glue("tower_cos_max", max(float(np.abs(m[~np.eye(len(m), dtype=bool)]).mean())
                          for m in directions.values()))
glue("ref_cone_img_random", gap.REFERENCE["image cone, random init on real data"][0])
glue("ref_cone_txt_random", gap.REFERENCE["text cone, random init on real data"][0])

# %% [markdown]
# At random initialisation ({glue:text}`tower_summary`). {cite:t}`liang2022mind` report cones of
# {glue:text}`ref_cone_img_random:.2f` (images) and {glue:text}`ref_cone_txt_random:.2f` (texts)
# for a randomly initialised CLIP on real data; {doc}`01_measuring_gap` measures ViT-B-32 at random
# initialisation on the world. The mean directions of different initialisations are far from
# parallel (mean |cosine| at most {glue:text}`tower_cos_max:.2f`), so two towers initialised
# separately start in different cones, already apart before any training. Training has to pull
# them together; the next two sections show what decides how far it gets.

# %% [markdown]
# ## 2. The temperature
#
# {cite:t}`liang2022mind` took a pretrained CLIP, fine-tuned it on MSCOCO at fixed temperatures, and
# measured the gap afterwards. We do the same in the world. For every seed a base CLIP
# ({glue:text}`sweep_model`, {glue:text}`sweep_steps` steps of {glue:text}`sweep_batch` pairs at
# temperature {glue:text}`base_temperature`, a recipe cheap enough for the sweeps to fit the book's
# budget) is trained from scratch; it is then fine-tuned for {glue:text}`finetune_steps` steps at
# each fixed temperature {glue:text}`temperature_list`, and once with the temperature learned from
# open_clip's starting value 0.07.
# Starting every run from a model that has already learned the world keeps a confound out: trained
# from scratch at a very low temperature, a small CLIP learns slowly, and its gap would partly be
# the gap it was initialised with.

# %%
recipe = training.SweepConfig.from_params(globals())


def measure(cfg: training.TrainConfig) -> dict:
    """Train (or load) one sweep CLIP and measure its gap and zero-shot accuracy on held-out
    default-world pairs."""
    t = training.cached_clip(cfg, progress=False, device=S.device)
    p, src = embeddings.world_pairs(world.WorldConfig(), n_eval, cfg.seed, "test")
    x, y = embeddings.embed_pairs(t.clip, p, src, progress=False)
    zs = evaluation.zero_shot(t.clip, x, p.factors)
    return {"L2M": gap.l2m(x, y), "cone (image)": gap.cone(x), "cone (text)": gap.cone(y),
            "zero-shot": float(zs.accuracy.mean()),
            "final temperature": float(t.history.temperature.iloc[-1])}


# %%
bases = pd.DataFrame([{"seed": s, **measure(recipe.base(s))} for s in seeds])
temps = pd.DataFrame([{"temperature": T, "seed": s, **measure(recipe.finetune(s, T))}
                      for T in temperatures for s in seeds])
learned = pd.DataFrame([{"seed": s, **measure(recipe.finetune(s, None))}
                        for s in (seeds if learned_temperature else [])])

# %%
glue("sweep_model", recipe.model)
glue("sweep_steps", recipe.base_steps)
glue("sweep_batch", recipe.batch_size)
glue("base_temperature", recipe.base_temperature)
glue("finetune_steps", recipe.finetune_steps)
glue("temperature_list", ", ".join(f"{t:g}" for t in temperatures))
glue("base_l2m", float(bases.L2M.mean()))
glue("base_zs", float(bases["zero-shot"].mean()))

# Liang et al. (2022), fine-tuning CLIP on MSCOCO at fixed temperatures: (temperature, gap after)
LIANG_TEMPERATURE = [(1, 0.24), (1 / 10, 0.30), (1 / 20, 0.55), (1 / 30, 0.64), (1 / 50, 0.80),
                     (1 / 100, 1.00)]

# %% mystnb={"figure": {"caption": "Gap (L2M) after fine-tuning at each fixed temperature, mean and 95% interval over seeds, beside Liang et al.'s CLIP fine-tuned on MSCOCO (grey) and, as a star, the runs whose temperature was learned.", "name": "fig-why-temperature"}}
summary_t = by_seed(temps, "temperature")
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.errorbar(summary_t.temperature, summary_t.value,
            yerr=[summary_t.value - summary_t.low, summary_t.high - summary_t.value],
            marker="o", capsize=3, label=f"small CLIP on the world ({n_seeds} seeds)")
ax.plot(*zip(*LIANG_TEMPERATURE), marker="s", ls="--", color="grey",
        label="CLIP on MSCOCO (Liang et al.)")
if len(learned):
    m, lo, hi = stats.interval(learned.L2M)
    ax.errorbar([learned["final temperature"].mean()], [m], yerr=[[m - lo], [hi - m]], marker="*",
                ms=12, color="crimson", capsize=3, ls="none",
                label="temperature learned from 0.07 (at its final value)")
ax.set(xscale="log", xlabel="temperature (fixed during training)", ylabel="gap, L2M")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The numbers behind {numref}`fig-why-temperature`, with the mean zero-shot accuracy at each
# temperature:

# %%
summary_t.rename(columns={"value": "L2M"}).style.format(precision=3)

# %%
lo_T, hi_T = min(temperatures), max(temperatures)
at = summary_t.set_index("temperature")
glue("l2m_lowT", at.loc[lo_T, "value"])
glue("l2m_lowT_ci", f"[{at.loc[lo_T, 'low']:.2f}, {at.loc[lo_T, 'high']:.2f}]")
glue("l2m_highT", at.loc[hi_T, "value"])
glue("l2m_highT_ci", f"[{at.loc[hi_T, 'low']:.2f}, {at.loc[hi_T, 'high']:.2f}]")
glue("lowT", lo_T)
glue("highT", hi_T)
rho = float(pd.Series(temps.temperature).rank().corr(temps.L2M.rank()))
glue("rho_T", rho)
glue("zs_lowT", at.loc[lo_T, "zero-shot"])
glue("zs_highT", at.loc[hi_T, "zero-shot"])

# %%
if len(learned):
    m, lo, hi = stats.interval(learned.L2M)
    glue("learned_note", f" With open_clip's default recipe the temperature is learned from 0.07 "
                         f"and ends at {learned['final temperature'].mean():.3f}; the gap is then "
                         f"{m:.2f} ([{lo:.2f}, {hi:.2f}]), with mean zero-shot accuracy "
                         f"{learned['zero-shot'].mean():.2f}.")
else:
    glue("learned_note", "")

# %% [markdown]
# The base models start with a gap of {glue:text}`base_l2m:.2f` and mean zero-shot accuracy
# {glue:text}`base_zs:.2f`. After fine-tuning at temperature {glue:text}`lowT` the gap is
# {glue:text}`l2m_lowT:.2f` (95% CI {glue:text}`l2m_lowT_ci`); at {glue:text}`highT` it is
# {glue:text}`l2m_highT:.2f` ({glue:text}`l2m_highT_ci`). The rank correlation between temperature
# and gap over all runs is {glue:text}`rho_T:.2f`; Liang et al.'s runs fall from 1.00 to 0.24 over
# the same range ({numref}`fig-why-temperature`). Mean zero-shot accuracy is
# {glue:text}`zs_lowT:.2f` and {glue:text}`zs_highT:.2f` at the two ends: a gap that closes is not
# a model that learned less, or more.{glue:text}`learned_note`
# A low temperature makes the loss care only about the hardest negatives; once each image is closer
# to its own caption than to any other, nothing pulls the two cones together.

# %% [markdown]
# ## 3. Information imbalance
#
# Now the base models are fine-tuned at temperature {glue:text}`sweep_temperature` on worlds whose
# captions name {glue:text}`mention_swept` with probability {glue:text}`mention_list` (the shape
# always, the background in a quarter of captions, the outline never). The x-axis is the share of
# the factors every image shows that the caption names on average.
# {cite:t}`schrodi2025two` trained CLIPs on full and on shortened captions and found the gap larger
# when the captions carried less.

# %%
info_rows = []
for p_mention in mention_levels:
    share = float(np.mean([world.mention_world(p_mention).p(f) for f in world.VISIBLE]))
    for s in seeds:
        info_rows.append({"mention": p_mention, "caption share": share, "seed": s,
                          **measure(recipe.finetune(s, sweep_temperature, p_mention))})
info = pd.DataFrame(info_rows)
glue("sweep_temperature", sweep_temperature)
glue("mention_list", ", ".join(f"{m:g}" for m in mention_levels))
glue("mention_swept", ", ".join(world.MENTION_SWEPT))

# %% mystnb={"figure": {"caption": "Gap (L2M) after fine-tuning on worlds whose captions name a growing share of the visible factors, mean and 95% interval over seeds.", "name": "fig-why-information"}}
summary_i = by_seed(info, "caption share")
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.errorbar(summary_i["caption share"], summary_i.value,
            yerr=[summary_i.value - summary_i.low, summary_i.high - summary_i.value],
            marker="o", capsize=3)
ax.set(xlabel="share of the visible factors a caption names", ylabel="gap, L2M")
plt.show()

# %%
summary_i.rename(columns={"value": "L2M"}).style.format(precision=3)

# %%
by = summary_i.set_index("caption share")
lo_c, hi_c = by.index.min(), by.index.max()
glue("l2m_least_info", by.loc[lo_c, "value"])
glue("l2m_least_info_ci", f"[{by.loc[lo_c, 'low']:.2f}, {by.loc[lo_c, 'high']:.2f}]")
glue("l2m_most_info", by.loc[hi_c, "value"])
glue("l2m_most_info_ci", f"[{by.loc[hi_c, 'low']:.2f}, {by.loc[hi_c, 'high']:.2f}]")
glue("least_info", lo_c)
glue("most_info", hi_c)

# %%
direction = "larger" if by.loc[lo_c, "low"] > by.loc[hi_c, "high"] else \
    "smaller" if by.loc[lo_c, "high"] < by.loc[hi_c, "low"] else "not clearly different"
glue("info_direction", direction)

# %% [markdown]
# When captions name {glue:text}`least_info:.2f` of the visible factors the gap is
# {glue:text}`l2m_least_info:.2f` ({glue:text}`l2m_least_info_ci`); when they name
# {glue:text}`most_info:.2f`, it is {glue:text}`l2m_most_info:.2f` ({glue:text}`l2m_most_info_ci`).
# The gap with less informative captions is **{glue:text}`info_direction`**
# ({numref}`fig-why-information`; Schrodi et al. report larger; "not clearly different" is too
# close to call at this many seeds).
# An image embedding must keep what distinguishes the image from others; a caption embedding can
# only hold what the caption says. The more the image holds that no caption says, the further apart
# the two must stay.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-why-1
# The deepest random MLP of section 1 has {glue:text}`max_depth` layers. Measure the cone of random
# MLPs twice as deep, with and without ReLUs, on the same inputs and seeds. Does the ReLU cone keep
# narrowing, and does the linear one move?
# ```
#
# ```{solution-start} ex-why-1
# :class: dropdown
# ```

# %%
deeper = 2 * max(cone_depths)
for nonlinear in (True, False):
    mean, lo, hi = stats.interval([cones.mlp_cone(inputs, cone_width, deeper, nonlinear, seed=s)
                       for s in seeds])
    layers = "Linear + ReLU" if nonlinear else "Linear only"
    before = mlp[(mlp.layers == layers) & (mlp.depth == max(cone_depths))].iloc[0].value
    print(f"{layers}: cone {before:.2f} at depth {max(cone_depths)}, "
          f"{mean:.2f} [{lo:.2f}, {hi:.2f}] at depth {deeper}")

# %% [markdown]
# Each ReLU layer folds its outputs a little further into the positive orthant, so the ReLU cone
# keeps rising towards 1 as the depth grows; the linear network, whose weights keep the signal's
# scale and bend nothing, leaves the inputs' spread where it was, at any depth.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-why-2
# Section 2 claims that the gap and zero-shot accuracy are different things. Using the runs of the
# temperature sweep (`temps`, one row per temperature and seed), compute the rank correlation
# between the gap and the zero-shot accuracy over all runs, and the mean of both at each
# temperature.
# ```
#
# ```{solution-start} ex-why-2
# :class: dropdown
# ```

# %%
rho_accuracy = temps.L2M.rank().corr(temps["zero-shot"].rank())
print(f"rank correlation between gap and zero-shot accuracy over {len(temps)} runs: "
      f"{rho_accuracy:.2f}")
temps.groupby("temperature")[["L2M", "zero-shot"]].mean().style.format(precision=3)

# %% [markdown]
# Compare the two columns temperature by temperature: the gap follows the temperature
# ({numref}`fig-why-temperature`) while the accuracy barely moves, whatever the sign of the
# correlation printed above. A smaller gap is not, by itself, a better model.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-why-3
# Does the temperature change the cones as well as the gap? From the same runs, tabulate the mean
# image cone and text cone at each temperature, beside the base models' (`bases`).
# ```
#
# ```{solution-start} ex-why-3
# :class: dropdown
# ```

# %%
cone_columns = ["cone (image)", "cone (text)", "L2M"]
cones_by_t = temps.groupby("temperature")[cone_columns].mean()
cones_by_t.loc["base model"] = bases[cone_columns].mean()
cones_by_t.style.format(precision=3)

# %% [markdown]
# The gap is the distance between the two cones' centres, the cone only how tightly each modality
# clusters around its own centre: the two can move separately, and the table shows how much each
# one moves as the temperature changes.
#
# ```{solution-end}
# ```
