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
# (ground-truth)=
# # Checking MDS against ground truth
#
# {cite:t}`yan2026beyond` never check that a feature labelled vision-dominant is about something visual.
# On real data nobody knows what a feature *should* be. In the world of {doc}`01_measuring_gap` we do:
# every factor is declared shared (visible and sometimes named), vision-only (never named) or
# language-only (not in the image), and the mention probability says how often a shared factor is named.
#
# This chapter finds, for each feature of {doc}`02_monosemantic_features`, the factor it encodes, derives
# the class MDS *should* give it, and checks the class MDS does give it, against two controls: random
# partitions with the same class sizes, and MDS computed after shuffling the captions across pairs.
# Then it uses the mention probability as a continuous ground truth.

# %% tags=["parameters"]
profile = "ci"  # the profile that set these values (for the record)
seed = 0  # seed of the world, of training and of the first feature extractors
n_train = 20_000  # world pairs the small CLIP trains on
train_steps = 800  # optimiser steps of the CLIP
batch_size = 256  # pairs per CLIP step
temperature = 0.01  # fixed softmax temperature of CLIP training
learn_temperature = False  # learn the temperature instead
n_test = 2_000  # held-out pairs
clip_model = "mdsgap-small"  # open_clip architecture, or "local-dir:PATH"
clip_pretrained = ""  # "" trains the small CLIP; else a pretrained tag or checkpoint file
device = "auto"  # "auto", "cpu" or "cuda"
n_feature_pairs = 10_000  # pairs whose embeddings train the feature extractors and are scored
sae_latents = 256  # latents of each sparse autoencoder
sae_k = 8  # active latents per sample (TopK)
sae_l1 = 0.003  # L1 coefficient of the ReLU SAE
sae_steps = 1500  # SAE training steps
ncl_features = 256  # features of the NCL head
ncl_steps = 1000  # NCL training steps
n_seeds = 3  # extractor seeds (TopK SAE, NCL); the raw dimensions need none
k_std = 1.0  # class thresholds at mean +- k_std standard deviations of MDS
band = 0.1  # cross-modal band of the interval rule
min_pairs = 5  # a feature firing on fewer pairs is labelled rare
n_boot = 100  # bootstrap replicates of the interval rule
factor_floor = 0.3  # a feature encodes a factor when the factor explains this share of its variance (eta^2)
n_perm = 1000  # random partitions per feature set
mention_values = [0.0, 0.25, 0.5, 0.75, 1.0]  # mention probabilities of the sweep
n_sweep_pairs = 4_000  # pairs per point of the sweep
n_ci_boot = 1000  # bootstrap replicates of the confidence intervals

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from mdsgap import dominance, embeddings, experiment, features, groundtruth, stats, world
from mdsgap.book import glue
from mdsgap.params import check_declared

S = experiment.Settings.from_params(globals())
EX = features.Extractors.from_params(globals())
check_declared(globals(), dict(n_feature_pairs=int, n_seeds=int, k_std=float, band=float, min_pairs=int, n_boot=int,
                               factor_floor=float, n_perm=int, mention_values=list, n_sweep_pairs=int, n_ci_boot=int))
if not S.on_world:
    raise ValueError("This chapter needs the world's ground truth; it cannot run on a CSV dataset (dataset_csv).")
sns.set_theme(style="whitegrid", context="notebook")

# %%
subject = experiment.subject(S)
pairs, x, y, data_id = experiment.feature_pairs(S, subject.clip, n_feature_pairs)
seeds = [S.seed + i for i in range(n_seeds)]
sets = {("raw", S.seed): features.raw_features(x.shape[1])}
for s in seeds:
    got, _ = features.build_sets(x, y, EX, s, subject.clip.identity, data_id, tools=("TopK", "NCL"))
    sets.update({(tool, s): fs for tool, fs in got.items()})
print(subject.label, "|", len(x), "pairs |", len(sets), "feature sets")

# %% [markdown]
# ## What the embeddings carry
#
# A factor can only be found in a feature if the embedding carries it. A logistic-regression probe per
# factor, trained on 70% of the pairs and tested on the rest, from each side:

# %%
probe = groundtruth.probe_factors(x, y, pairs.factors, seed=S.seed)
probe_wide = probe.pivot_table(index=["modality", "factor"], columns="side", values="accuracy")
probe_wide["majority"] = probe.groupby(["modality", "factor"])["majority"].first()
p = probe.set_index(["factor", "side"])["accuracy"]
glue("probe_outline", p[("outline", "image")])
glue("probe_texture", p[("texture", "image")])
glue("probe_template", p[("template", "text")])
glue("probe_tone", p[("tone", "text")])
probe_wide.style.format(precision=3)

# %% [markdown]
# The images carry the vision-only outline (probe accuracy {glue:text}`probe_outline:.2f`) and, weakly, the
# background texture ({glue:text}`probe_texture:.2f`); the captions carry their template
# ({glue:text}`probe_template:.2f`) and tone ({glue:text}`probe_tone:.2f`), against the majority rates in the
# last column. Contrastive training rewards only what both sides share, so these factors survive only as
# what the encoders did not bother to remove.

# %% [markdown]
# ## Which factor does a feature encode?
#
# For every feature and every factor we compute the correlation ratio $\eta^2$: the share of the feature's
# activation variance that the factor's value explains, read on the side where the factor exists (images for
# vision-only factors, captions for language-only ones, the better side for shared ones; a side where the
# feature fires on fewer than 20 samples is not read).
# The feature encodes its best factor if $\eta^2 \geq$ {glue:text}`factor_floor`; its expected class is then
# CMD for a shared factor, ImgD for a vision-only one and TxtD for a language-only one.
# $\eta^2$ suits sparse features that encode a conjunction ("red circles") as well as dense ones; the best
# one-vs-rest AUROC, the alternative, is checked at the end.

# %%
checks = {key: groundtruth.check_features(fs, x, y, pairs.factors, k_std=k_std, band=band, min_pairs=min_pairs,
                                          n_boot=n_boot, floor=factor_floor, seed=key[1])
          for key, fs in sets.items()}
glue("factor_floor", factor_floor)
glue("n_seeds", n_seeds)
assigned = pd.DataFrame({f"{tool} (seed {s})": c.assignment.loc[c.assignment.expected.notna(), "factor"].value_counts()
                         for (tool, s), c in checks.items()}).T.reindex(columns=[f.name for f in world.FACTORS])
assigned = assigned.fillna(0).astype(int)
assigned["features"] = [len(c.assignment) for c in checks.values()]
assigned

# %%
first = {tool: checks[(tool, S.seed)] for tool in ("raw", "TopK", "NCL")}
n_modality_specific = sum(int(c.assignment.expected.isin([dominance.IMGD, dominance.TXTD]).sum()) for c in first.values())
n_encoding = sum(int(c.assignment.expected.notna().sum()) for c in first.values())
glue("n_modality_specific", n_modality_specific)
glue("n_encoding", n_encoding)

# %% [markdown]
# Of the {glue:text}`n_encoding` features (raw, TopK and NCL, first seed) that encode a factor, only
# {glue:text}`n_modality_specific` encode a vision-only or language-only one.
# The probes found those factors in the embeddings, but spread thin over many directions: no feature
# specialises in them. So in this world the check is mostly a test of one claim: *features of shared
# concepts should be cross-modal*.

# %% [markdown]
# ## MDS classes against expected classes
#
# The confusion matrices below (first seed) count features with an expected class (rows) by the class MDS
# gives them (columns), under the two rules of {doc}`03_modality_dominance`: thresholds at mean $\pm$ k std,
# and the bootstrap interval against a cross-modal band.

# %%
fig, axes = plt.subplots(2, 3, figsize=(12, 7))
for row, rule in zip(axes, groundtruth.RULES):
    for ax, (tool, c) in zip(row, first.items()):
        m = groundtruth.confusion(c.labels[rule], c.assignment["expected"].to_numpy(dtype=object))
        sns.heatmap(m, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax)
        ax.set(title=f"{tool}, {rule}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Accuracy is the share of those features whose MDS class is the expected one, with a 95% interval from a
# bootstrap over seeds ({glue:text}`n_seeds` for TopK and NCL) and features. Two controls:
#
# - **random partition**: the MDS classes shuffled among all classified features of the set, so the class
#   sizes stay the same; an MDS that knows nothing about the features scores this;
# - **shuffled pairing**: MDS recomputed after the captions are shuffled across pairs. A score that measured
#   whether a feature fires on *both sides of the same pair* would lose its cross-modal features.

# %%
rows = []
for tool in ("raw", "TopK", "NCL"):
    group = [c for (t, _), c in checks.items() if t == tool]
    for rule in groundtruth.RULES:
        for condition in ("MDS", "random partition", "shuffled pairing"):
            mean, lo, hi = stats.mean_ci([c.correct(rule, condition, n_perm=n_perm, seed=S.seed) for c in group],
                                         n_boot=n_ci_boot, seed=S.seed)
            rows.append({"tool": tool, "rule": rule, "condition": condition, "accuracy": mean, "low": lo, "high": hi,
                         "features": int(np.mean([len(c.correct(rule)) for c in group])), "seeds": len(group)})
acc = pd.DataFrame(rows)
display(acc.pivot_table(index=["tool", "rule"], columns="condition", values="accuracy").style.format(precision=3))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
colors = {"MDS": "crimson", "random partition": "grey", "shuffled pairing": "steelblue"}
for ax, rule in zip(axes, groundtruth.RULES):
    d = acc[acc.rule == rule]
    for j, (condition, c) in enumerate(colors.items()):
        t = d[d.condition == condition]
        xs = np.arange(len(t)) + (j - 1) * 0.22
        ax.errorbar(xs, t.accuracy, yerr=[t.accuracy - t.low, t.high - t.accuracy], fmt="o", color=c, capsize=4,
                    label=condition)
    ax.set(xticks=range(3), xticklabels=list(d.tool.unique()), title=f"{rule} rule", ylabel="accuracy", ylim=(0, 1))
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
a = acc.set_index(["tool", "rule", "condition"])
for tool in ("raw", "TopK", "NCL"):
    for rule, rkey in zip(groundtruth.RULES, ("std", "int")):
        for condition, ckey in (("MDS", "mds"), ("random partition", "rand"), ("shuffled pairing", "shuf")):
            r = a.loc[(tool, rule, condition)]
            glue(f"acc_{tool}_{rkey}_{ckey}", r.accuracy)
            glue(f"acc_{tool}_{rkey}_{ckey}_ci", f"[{r.low:.2f}, {r.high:.2f}]")
for tool in ("raw", "TopK", "NCL"):
    for rule, rkey in zip(groundtruth.RULES, ("std", "int")):
        r, chance, shuf = a.loc[(tool, rule, "MDS")], a.loc[(tool, rule, "random partition")], a.loc[(tool, rule, "shuffled pairing")]
        glue(f"verdict_{tool}_{rkey}", "above" if r.low > chance.accuracy else "below" if r.high < chance.accuracy else "not distinguishable from")
        glue(f"shuffle_{tool}_{rkey}", "raises" if shuf.low > r.high else "lowers" if shuf.high < r.low else "does not clearly change")
topk_sides = first["TopK"].scores[first["TopK"].assignment.expected.notna().to_numpy()]
glue("topk_encoding_one_sided", float(((topk_sides < 0.05) | (topk_sides > 0.95))[np.isfinite(topk_sides)].mean()))

# %% [markdown]
# Under the interval rule, the NCL features' MDS classes agree with the ground truth for a share
# {glue:text}`acc_NCL_int_mds:.2f` (95% CI {glue:text}`acc_NCL_int_mds_ci`), {glue:text}`verdict_NCL_int`
# the random partitions ({glue:text}`acc_NCL_int_rand:.2f`); the raw dimensions score
# {glue:text}`acc_raw_int_mds:.2f` ({glue:text}`verdict_raw_int` chance, {glue:text}`acc_raw_int_rand:.2f`);
# the TopK SAE's latents {glue:text}`acc_TopK_int_mds:.2f` ({glue:text}`acc_TopK_int_mds_ci`;
# {glue:text}`verdict_TopK_int` chance, {glue:text}`acc_TopK_int_rand:.2f`).
# Under the thresholds rule: NCL {glue:text}`acc_NCL_std_mds:.2f` ({glue:text}`verdict_NCL_std` chance,
# {glue:text}`acc_NCL_std_rand:.2f`), raw {glue:text}`acc_raw_std_mds:.2f` ({glue:text}`verdict_raw_std`
# {glue:text}`acc_raw_std_rand:.2f`), TopK {glue:text}`acc_TopK_std_mds:.2f` ({glue:text}`verdict_TopK_std`
# {glue:text}`acc_TopK_std_rand:.2f`).
#
# The SAE's failure has the cause {doc}`03_modality_dominance` found: a share
# {glue:text}`topk_encoding_one_sided:.2f` of its factor-encoding latents fire on one modality only, so a
# latent for "triangle" is an *image*-triangle latent or a *caption*-triangle latent. Its MDS says on which
# side of the gap the latent lives, not whether the concept is visual or linguistic.
#
# Shuffling the captions across pairs {glue:text}`shuffle_NCL_int` NCL's accuracy
# ({glue:text}`acc_NCL_int_shuf:.2f` under the interval rule) and {glue:text}`shuffle_raw_int` that of the raw
# dimensions ({glue:text}`acc_raw_int_shuf:.2f`). It cannot destroy cross-modal scores, because the default
# MDS averages, over the pairs where a feature fires, the image's share of the activation: after shuffling,
# a cross-modal feature fires on the image alone in some pairs (share 1) and on the caption alone in others
# (share 0), and these balance. MDS measures how a feature's activation is split between the modalities,
# not whether it fires on *matching* pairs; cross-modal alignment is a question MDS cannot answer.

# %% [markdown]
# ## A continuous ground truth: the mention probability
#
# A feature that fires on every image showing "red" and on every caption naming it, with equal strength,
# has a predictable MDS. Where the caption names the colour (probability $p$) the pair contributes 1/2;
# where it does not, the feature fires on the image alone and the pair contributes 1. So
#
# $$\mathrm{MDS} = 1 - p/2,$$
#
# from 1 (vision-dominant, never named) to 1/2 (cross-modal, always named).
# We keep the CLIP and the feature extractors fixed and score fresh pairs whose captions name colour, size
# and position with probability $p \in$ {glue:text}`mention_list`, then read the MDS of the features that
# encode one of those factors.

# %%
glue("mention_list", ", ".join(f"{v:g}" for v in mention_values))
sweep_tools = {tool: sets[(tool, S.seed)] for tool in ("raw", "TopK", "NCL")}
sweep_stats = {}
for p_mention in mention_values:
    cfg = world.mention_world(p_mention)
    sp, ssrc = embeddings.world_pairs(cfg, n_sweep_pairs, S.seed, "sweep")
    sx, sy = embeddings.embed_pairs(subject.clip, sp, ssrc, progress=False)
    for tool, fs in sweep_tools.items():
        sweep_stats[(tool, p_mention)] = dominance.dominance_stats(zip(fs.batches(sx), fs.batches(sy)), fs.n_features)
sweep_rows = []
for tool in sweep_tools:
    a_ = checks[(tool, S.seed)].assignment
    # the same features at every p: those that encode colour, size or position and fire at every p
    chosen = (a_.expected.notna() & a_.factor.isin(["colour", "size", "position"])).to_numpy()
    for p_mention in mention_values:
        chosen = chosen & (sweep_stats[(tool, p_mention)].firing() >= min_pairs)
    for p_mention in mention_values:
        mean, lo, hi = stats.mean_ci([sweep_stats[(tool, p_mention)].scores()[chosen]], n_boot=n_ci_boot, seed=S.seed)
        sweep_rows.append({"tool": tool, "p": p_mention, "MDS": mean, "low": lo, "high": hi, "features": int(chosen.sum())})
sweep = pd.DataFrame(sweep_rows)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ps = np.linspace(0, 1, 50)
ax.plot(ps, groundtruth.ideal_mds(ps), color="black", ls="--", label="ideal cross-modal feature, 1 - p/2")
for tool, d in sweep.groupby("tool", sort=False):
    ax.errorbar(d.p, d.MDS, yerr=[d.MDS - d.low, d.high - d.MDS], marker="o", capsize=3, label=f"{tool} features")
ax.set(xlabel="probability that the caption names the factor", ylabel="mean MDS of colour/size/position features",
       ylim=(0, 1.05))
ax.legend(fontsize=8)
plt.show()

# %%
fits = {}
for tool, d in sweep.groupby("tool", sort=False):
    slope = float(np.polyfit(d.p, d.MDS, 1)[0])
    fits[tool] = slope
    glue(f"slope_{tool}", slope)
    glue(f"sweep_{tool}_p0", float(d.MDS.iloc[0]))
    glue(f"sweep_{tool}_p1", float(d.MDS.iloc[-1]))
display(sweep.style.format(precision=3))

# %%
closest = min(fits, key=lambda t: abs(fits[t] + 0.5))
glue("closest_tool", closest)
glue("closest_slope", fits[closest])
far = all(abs(v + 0.5) > 0.25 for v in fits.values())
glue("sweep_verdict", "None of the tools comes close to the ideal" if far else
     "At least one tool comes within 0.25 of the ideal slope")

# %% [markdown]
# The ideal line has slope $-1/2$. The fitted slopes of mean MDS against $p$ are
# {glue:text}`slope_NCL:.2f` for NCL (MDS {glue:text}`sweep_NCL_p0:.2f` when the factor is never named,
# {glue:text}`sweep_NCL_p1:.2f` when always named), {glue:text}`slope_raw:.2f` for the raw dimensions and
# {glue:text}`slope_TopK:.2f` for the TopK SAE ({glue:text}`closest_tool` is closest).
# {glue:text}`sweep_verdict`. The ideal assumes a feature that is silent on captions that leave its value
# out and equally strong on both sides; learned features need be neither. Two likely reasons, not tested
# here: a caption that names no colour may still land near every colour's text direction, and the text side
# of a pair may be systematically stronger or weaker than the image side (the gap again). Either would keep
# MDS from moving as language carries more or less of the concept. As a measure of *how much of a concept
# language carries*, MDS is weak on every tool here.

# %% [markdown]
# ## Does the conclusion depend on how factors are assigned?
#
# The same check with the best one-vs-rest AUROC (floor 0.75) in place of $\eta^2$, first seed:

# %%
alt = []
for tool, fs in sweep_tools.items():
    c = groundtruth.check_features(fs, x, y, pairs.factors, k_std=k_std, band=band, min_pairs=min_pairs,
                                   n_boot=n_boot, score="auroc", seed=S.seed)
    for rule in groundtruth.RULES:
        alt.append({"tool": tool, "rule": rule, "assignment": "AUROC",
                    "accuracy": float(c.correct(rule).mean()) if len(c.correct(rule)) else np.nan,
                    "random partition": float(c.correct(rule, "random partition", n_perm=n_perm).mean())
                    if len(c.correct(rule)) else np.nan,
                    "features": len(c.correct(rule))})
        e = checks[(tool, S.seed)]
        alt.append({"tool": tool, "rule": rule, "assignment": "eta^2", "accuracy": float(e.correct(rule).mean()),
                    "random partition": float(e.correct(rule, "random partition", n_perm=n_perm).mean()),
                    "features": len(e.correct(rule))})
alt = pd.DataFrame(alt)
order = alt.pivot_table(index=["assignment", "rule"], columns="tool", values="accuracy")
same_order = all((order.loc[i].rank() == order.loc[order.index[0]].rank()).all() for i in order.index)
glue("same_order", "is the same" if same_order else "is not the same")
alt.pivot_table(index=["tool", "rule"], columns="assignment", values=["accuracy", "random partition"]).style.format(precision=3)

# %% [markdown]
# The ranking of the three tools by accuracy {glue:text}`same_order` under both assignments and both rules.
