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
# (modality-dominance)=
# # The Modality Dominance Score
#
# {cite:t}`yan2026beyond` ask of each feature of a vision-language model: does it belong to vision,
# to language, or to both?
# Their answer is the **Modality Dominance Score** ({term}`MDS`), computed on features that are
# meant to be interpretable one by one: the latents of a sparse autoencoder trained on both
# modalities' embeddings, or the non-negative features of an NCL head {cite}`wang2024nonnegative`.
# Features are then sorted into vision-dominant ({term}`ImgD`), language-dominant ({term}`TxtD`) and
# cross-modal ({term}`CMD`) classes.
#
# This chapter computes MDS for the feature sets of {doc}`02_monosemantic_features` (the same cached
# extractors, on the same pairs), shows how the classes come out for each feature set and each
# reading of the formula, and repeats the paper's ablation with the control it lacked.
#
# :::{admonition} What you will learn
# - how MDS is computed from the activations of a feature on matched images and captions, in one
#   streaming pass with bootstrap replicates;
# - two rules that turn scores into ImgD, TxtD and CMD classes (thresholds at mean $\pm$ k std, and
#   a bootstrap interval against a cross-modal band), and how much the reading of the formula
#   matters;
# - why a sparse autoencoder on a model with a large gap pushes MDS to 0 and 1;
# - how to judge an ablation against random sets of latents drawn outside the class and matched on
#   what they carry.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
k_std = 1.0  # class thresholds at mean +- k_std standard deviations of MDS
min_pairs = 5  # a feature firing on fewer pairs is labelled rare
n_boot = 100  # bootstrap replicates for the interval classification
band = 0.1  # cross-modal band [0.5 - band, 0.5 + band] of the interval classification
n_random_sets = 200  # matched random latent sets per class in the removal ablation
doses = [2, 4, 8, 16, 32]  # a class's first k latents in score order, against matched sets
run_dir = ""  # a run folder of the `mdsgap` command (embed, train-sae, score) to show

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from mdsgap import experiment, features, gap, plots
from mdsgap.attribution import comparison, dominance
from mdsgap.clip import evaluation
from mdsgap.edit import control, editing
from mdsgap.features import interpretability
from mdsgap.book import check_declared, glue

# %%
S = experiment.ExperimentConfig.from_params(globals())
EX = features.ExtractorsConfig.from_params(globals())
check_declared(globals(), dict(k_std=float, min_pairs=int, n_boot=int, band=float,
                               n_random_sets=int, doses=list, run_dir=str))
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## The pairs and their embeddings
#
# The feature extractors learn from, and MDS is computed on, a fresh set of pairs embedded by the
# chapter's CLIP.

# %%
subject = experiment.subject(S)
pairs, x, y, data_id = experiment.feature_pairs(S, subject.clip, S.n_feature_pairs)
glue("n_pairs", len(x))
print(subject.label, "|", len(x), "pairs")

# %% [markdown]
# The feature sets are those of {doc}`02_monosemantic_features`: the raw dimensions (each split into
# its positive and negative half), three sparse autoencoders (TopK, BatchTopK, ReLU) and an NCL head.

# %%
sets, saes = features.build_sets(x, y, EX, S.seed, subject.clip.identity, data_id)

# %% [markdown]
# ## Computing MDS
#
# The default reading, for feature $d$ with activation $a_d$:
#
# $$\mathrm{MDS}_d = \frac{1}{|F_d|} \sum_{i \in F_d} \frac{a_d(x_i)}{a_d(x_i) + a_d(y_i)},$$
#
# where $F_d$ is the set of pairs on which the feature fires on either side.
# A score of 1 means the feature fires on images only, 0 on texts only.
# The sums are accumulated batch by batch, so memory does not grow with the number of pairs.

# %%
stats = {name: dominance.dominance_stats(zip(fs.batches(x), fs.batches(y)), fs.n_features,
                                         n_boot=n_boot, seed=S.seed)
         for name, fs in sets.items()}
scores = {name: st.scores() for name, st in stats.items()}
thresholds = {name: dominance.std_thresholds(scores[name], k=k_std, live=st.firing() >= min_pairs)
              for name, st in stats.items()}

# %% mystnb={"figure": {"caption": "MDS of every feature that fires, one panel per feature set; the dashed lines are the class thresholds at mean plus or minus k standard deviations.", "name": "fig-mds-histograms"}}
fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharex=True)
axes = axes.flat
for ax in axes[len(sets):]:
    ax.axis("off")
for ax, (name, s) in zip(axes, scores.items()):
    ax.hist(s[np.isfinite(s)], bins=np.linspace(0, 1, 26), color="grey")
    for t in (thresholds[name].low, thresholds[name].high):
        if 0 <= t <= 1:
            ax.axvline(t, color="crimson", ls="--")
    ax.set(title=name, xlabel="MDS")
axes[0].set_ylabel("features")
axes[3].set_ylabel("features")
fig.tight_layout()
plt.show()

# %% [markdown]
# The dashed lines of {numref}`fig-mds-histograms` are the class thresholds, mean $\pm$
# {glue:text}`k_std` standard deviations of each feature set's scores (a line outside $[0, 1]$ is
# not drawn).

# %%
labels = {name: dominance.classify(scores[name], st.firing(), thresholds[name], min_pairs=min_pairs)
          for name, st in stats.items()}
counts = pd.DataFrame({name: dominance.class_counts(lab) for name, lab in labels.items()})
counts = counts.T.fillna(0).astype(int)
glue("k_std", k_std)
counts

# %% [markdown]
# ## A rule with uncertainty
#
# Thresholds at mean $\pm$ k std depend on the whole distribution: a feature's class can change when
# other features are added.
# A per-feature alternative asks whether a bootstrap interval of its MDS lies above, below or inside
# a cross-modal band around 0.5 (here of half-width {glue:text}`band`); features whose interval
# straddles an edge of the band are *uncertain*.

# %%
ci_labels = {name: dominance.classify_ci(st.boot_scores(), st.firing(), band=band,
                                         min_pairs=min_pairs)[0]
             for name, st in stats.items()}
glue("band", band)
ci_counts = pd.DataFrame({name: dominance.class_counts(lab) for name, lab in ci_labels.items()})
ci_counts.T.fillna(0).astype(int)

# %% [markdown]
# ## Does the reading of the formula matter?
#
# The paper does not publish its formula.
# We compare the default with two other readings: the share of total activation mass on the image
# side, and the share of firings on the image side.
# The table gives, for each feature set, the fraction of features whose class is the same under both
# readings (same thresholds rule).

# %%
agree = {}
for name, st in stats.items():
    live = st.firing() >= min_pairs
    row = {}
    for variant in ("mass", "frequency"):
        s = st.scores(variant)
        th = dominance.std_thresholds(s, k=k_std, live=live)
        lab = dominance.classify(s, st.firing(), th, min_pairs)
        same = float((lab[live] == labels[name][live]).mean()) if live.any() else np.nan
        row[f"ratio vs {variant}"] = same
    agree[name] = row
agree = pd.DataFrame(agree).T
glue("agree_min", float(np.nanmin(agree.values)))
agree.style.format(precision=3)

# %% [markdown]
# Across feature sets and readings, at least a share {glue:text}`agree_min:.2f` of the live features
# keep their class.

# %% [markdown]
# ## What the SAE does to MDS
#
# With a gap, the images and the texts occupy different regions, and a sparse autoencoder can
# reconstruct each region with its own latents.

# %%
s = scores["TopK"]
live = stats["TopK"].firing() >= min_pairs
one_sided = float(((s[live] < 0.05) | (s[live] > 0.95)).mean())
glue("topk_one_sided", one_sided)
ncl_live = stats["NCL"].firing() >= min_pairs
glue("ncl_one_sided", float(((scores["NCL"] < 0.05) | (scores["NCL"] > 0.95))[ncl_live].mean()))

# %% [markdown]
# A share {glue:text}`topk_one_sided:.2f` of the live TopK latents fire on one modality only (MDS
# below 0.05 or above 0.95), against {glue:text}`ncl_one_sided:.2f` of the NCL features, which were
# trained to match the two sides of a pair.
# When nearly every score is 0 or 1, mean $\pm$ k std thresholds no longer separate three classes:
# which side a latent fires on says where the embedding sits, not what the concept is.
# Which of the two MDS measures is a question for ground truth, which the world provides.

# %% [markdown]
# ## Examples
#
# For one NCL feature of each class, the images and the captions on which it fires most
# ({numref}`fig-mds-examples`; a side on which the feature never fires is said so rather than
# shown).
# The feature shown for ImgD and TxtD is the one farthest from 1/2, for CMD the one closest to it.

# %%
lab, s = labels["NCL"], scores["NCL"]
examples = {}
for cls in dominance.CLASSES:
    idx = np.flatnonzero(lab == cls)
    if len(idx):
        distance = np.abs(s[idx] - 0.5)
        examples[cls] = idx[np.argmin(distance) if cls == dominance.CMD else np.argmax(distance)]

# %% mystnb={"figure": {"caption": "For one NCL feature of each class, the images on which it fires most, each with its own caption.", "name": "fig-mds-examples"}}
rows = []
for cls, d in examples.items():
    top_img = interpretability.top_samples(sets["NCL"], x, d)
    if top_img is None:
        images, captions = None, []
    else:
        images = pairs.images[top_img] if S.on_world else pairs.load_images(top_img)
        captions = [pairs.captions[i] for i in top_img]
    rows.append((f"NCL feature {d}: {cls}, MDS {s[d]:.2f}", images, captions))
if rows:
    plots.example_rows(rows)
    plt.show()

# %%
for cls, d in examples.items():
    top_txt = interpretability.top_samples(sets["NCL"], y, d)
    print(f"NCL feature {d} ({cls}), top captions:")
    print("  fires on no caption" if top_txt is None else
          "\n".join(f"  {pairs.captions[i]}" for i in top_txt))

# %% [markdown]
# ## Removing a class, against a control
#
# The paper's ablation removes each class from the SAE's reconstruction of the embeddings and
# reports that removing the cross-modal class hurts least.
# A class's effect is only meaningful beside the effect of removing latents that carry as much: a
# class of heavy latents costs more than a class of light ones, whatever it holds.
# So each class is compared with {glue:text}`n_random_sets` random sets drawn from the classified
# TopK latents *outside* the class, each member replaced by one of the ten latents closest to it in
# what it carries on these pairs (its energy over images and captions, and how often it fires),
# and the class is judged against what a random set carrying exactly its totals does
# (`mdsgap.edit.control`, whose calibration the tests check on simulated studies).
# Zero-shot accuracy (mean over the zero-shot factors) and retrieval are measured on held-out pairs
# whose image embeddings, caption embeddings and zero-shot class embeddings all go through the same
# edit; a change is the edited score minus the reconstruction's, so a loss is negative.

# %%
glue("n_random_sets", n_random_sets)
glue("chosen_tool", f"the {comparison.CHOSEN[0]} SAE")
if S.on_world:
    test = experiment.test_data(S, subject.clip)
    classes = evaluation.zero_shot_classes(subject.clip)
    topk = saes["TopK"]
    readout = editing.removal_readout(topk, test.x, test.y, classes, test.factors)
    codes = [topk.encode(gap.normalize(e).float()) for e in (test.x, test.y)]
    carry = control.carried(*codes)

# %%
if not S.on_world:
    print("The removal ablation needs the world's factors for zero-shot; skipped for a CSV "
          "dataset.")
    for key in ("least_harmful", "least_is_cmd", "least_beyond", "class_sizes", "beyond_random",
                "n_cmd", "no_control", "chosen_zero_shot", "dose_reach", "dose_decided"):
        glue(key, "(needs the world's factors)")
    glue("n_dose_tests", 0)
    glue("dose_chance", float("nan"))

# %%
if S.on_world:
    cfg = control.ControlConfig(n_random=n_random_sets, seed=S.seed)
    rules = {"mean ± k std": labels["TopK"], "interval": ci_labels["TopK"]}
    table = pd.concat([control.compare(readout, lab, carry, cfg).assign(rule=rule, seed=S.seed)
                       for rule, lab in rules.items()], ignore_index=True)

# %%
if S.on_world:  # the classes of the method chapter 4 chose, on the dictionary it chose
    tool, method = comparison.CHOSEN
    chosen_sets, chosen_saes = features.build_sets(x, y, EX, S.seed, subject.clip.identity,
                                                   data_id, tools=(tool,))
    cx, cy = features.encode_pairs(chosen_sets[tool], x, y)
    att_c = comparison.attribute(method, cx, cy, x=x.numpy(), y=y.numpy(),
                                 opts=comparison.MethodConfig(min_pairs=min_pairs, seed=S.seed))
    chosen = att_c.labels
    sae_c = chosen_saes[tool]
    carry_c = control.carried(*[sae_c.encode(gap.normalize(e).float()) for e in (test.x, test.y)])
    readout_c = editing.removal_readout(sae_c, test.x, test.y, classes, test.factors)
    table = pd.concat([table, control.compare(readout_c, chosen, carry_c, cfg).assign(
        rule="probe partner", seed=S.seed)], ignore_index=True)
    removal = control.verdicts(table, by=("rule", "class", "readout"))

# %% [markdown]
# The scores before any edit, on the original embeddings and on the TopK SAE's reconstruction, and
# then the change that removing each class causes, beside its matched random sets (the p-value is
# the permutation test's; `matched` is the share of stand-ins within a factor 1.5 of their member, and
# `unmatched` names what the class carries more or less of than any random set):

# %%
if S.on_world:
    original = editing.downstream(test.x, test.y, classes, test.factors)
    print("original embeddings:", {k: round(v, 3) for k, v in original.items()})
    print("TopK reconstruction:", {k: round(v, 3) for k, v in readout([]).items()})
    if comparison.CHOSEN[0] != "TopK":
        plain_c = {k: round(v, 3) for k, v in readout_c([]).items()}
        print(f"{comparison.CHOSEN[0]} reconstruction:", plain_c)
    shown = ["rule", "class", "readout", "size", "change", "random mean", "p", "matched",
             "unmatched", "verdict"]
    display(removal[shown].style.format(precision=3, subset=shown[4:8]).hide(axis="index"))

# %% mystnb={"figure": {"caption": "Change of zero-shot accuracy and retrieval when each class is removed (red), beside random sets drawn outside the class and matched on what they carry (grey: the value for a random set of the class's totals, and the 95% range): the TopK latents under each MDS rule (two rows), then the chosen method's classes on the dictionary chapter 4 chose (last row). Negative is a loss.", "name": "fig-mds-removal"}}
if S.on_world:
    plots.removal_against_random(table, editing.METRICS)
    plt.show()

# %%
if S.on_world:
    zs = removal[(removal.readout == "zero-shot") & (removal.rule == "interval")].set_index("class")
    least = zs["change"].idxmax()
    beyond = [c for c in zs.index if zs.loc[c, "verdict"] in ("above", "below")]
    glue("least_harmful", least)
    glue("class_sizes", ", ".join(f"{c} {int(zs.loc[c, 'size'])}" for c in zs.index))
    glue("beyond_random", ", ".join(f"{c} ({zs.loc[c, 'verdict']} random, p = {zs.loc[c, 'p']:.3f})"
                                    for c in beyond) if beyond else "none")
    lacking = [c for c in zs.index if zs.loc[c, "verdict"] == "no control"]

# %%
if S.on_world:
    pz = removal[(removal.readout == "zero-shot") & (removal.rule == "probe partner")]
    said = [f"{r['class']} " + (f"{r.change:+.3f} " if np.isfinite(r.change) else "")
            + f"({r.verdict}" + (f", p = {r.p:.3f})" if np.isfinite(r.p) else ")")
            for _, r in pz.iterrows()]
    glue("chosen_zero_shot", "; ".join(said) or "no class")
    glue("no_control", ", ".join(lacking) or "none")
    glue("least_is_cmd", "yes" if least == dominance.CMD else "no")
    glue("least_beyond", "yes" if least in beyond else "no")
    glue("n_cmd", int((np.asarray(ci_labels["TopK"]) == dominance.CMD).sum()))

# %% [markdown]
# With the thresholds rule the TopK latents split badly (their scores sit at 0 and 1), so the text
# below reads the interval rule's classes; {numref}`fig-mds-removal` shows both, and a third row.
# Removing {glue:text}`least_harmful` costs the least zero-shot accuracy (is it CMD, as the paper
# reports? **{glue:text}`least_is_cmd`**; does its cost differ from its matched random sets'?
# **{glue:text}`least_beyond`**), but the classes differ in size ({glue:text}`class_sizes`
# latents) and in what their latents carry, and removing more of the reconstruction costs more
# whatever it holds.
# Against random sets that carry as much, the classes whose zero-shot change differs at the 5%
# level are: {glue:text}`beyond_random`.
# Only such a difference says something about the class rather than its mass. The TopK SAE has
# {glue:text}`n_cmd` CMD latents under this rule; with none, the paper's headline comparison
# (removing CMD hurts least) cannot be posed for it.
# Classes with no matched control at all: {glue:text}`no_control`. A class that holds a large share
# of the classified latents leaves too few outside it: random sets drawn from them share most of
# their latents (or cannot be drawn), and one draw of the rest is no control
# (`control.MAX_OVERLAP`).
# The third row of {numref}`fig-mds-removal` removes the classes of the method
# {doc}`04_ground_truth` chose (probe partners on {glue:text}`chosen_tool`); their zero-shot
# changes against matched random sets: {glue:text}`chosen_zero_shot`.

# %% [markdown]
# ### Dose by dose
#
# A class that holds most of the classified latents has no control as a whole, but its first few
# latents do.
# We remove each class's first $k$ latents in score order (the most dominant first; for CMD the most
# balanced), for $k$ = {glue:text}`dose_list`, and compare each dose with $k$ matched latents drawn
# outside the *whole* class ({numref}`fig-mds-dose`), for the interval rule's classes of the TopK
# latents and for the chosen method's classes on the dictionary chapter 4 chose
# ({glue:text}`chosen_tool`):

# %%
glue("dose_list", ", ".join(str(d) for d in doses))
if S.on_world:
    rank = control.score_rank(ci_labels["TopK"], scores["TopK"])
    dose = control.dose_response(readout, ci_labels["TopK"], rank, carry, doses, cfg)
    rank_c = control.score_rank(chosen, att_c.scores)
    dose_c = control.dose_response(readout_c, chosen, rank_c, carry_c, doses, cfg)
    dose = pd.concat([dose.assign(labelling="MDS on TopK"),
                      dose_c.assign(labelling="probe partner")]).assign(seed=S.seed)
    by_dose = control.verdicts(dose, by=("labelling", "class", "dose", "readout"))

# %% mystnb={"figure": {"caption": "Change of each readout as the interval rule's classes of TopK latents (top) and the probe partners' classes of the chosen dictionary (bottom) lose their first k latents in score order (lines), beside matched random sets of k latents drawn outside the class (shaded: their 95% range; dashed: the value for a set of the class's totals). Negative is a loss.", "name": "fig-mds-dose"}}
if S.on_world:
    plots.dose_response(dose, editing.METRICS)
    plt.show()

# %%
if S.on_world:
    zs_dose = by_dose[(by_dose.readout == "zero-shot") & (by_dose.verdict != "no control")]
    reach = zs_dose.groupby(["labelling", "class"]).dose.max()
    glue("dose_reach", ", ".join(f"{c} ({n}) up to {int(k)}" for (n, c), k in reach.items())
         or "none")
    decided = zs_dose[zs_dose.verdict.isin(["above", "below"])]
    testable = zs_dose[zs_dose.verdict != "undecidable"]
    glue("n_dose_tests", len(testable))
    glue("dose_chance", 0.05 * len(testable))
    glue("dose_decided", "; ".join(f"{r['class']} ({r.labelling}) at {int(r.dose)} ({r.verdict}, "
                                   f"p = {r.p:.3f})" for _, r in decided.iterrows()) or "none")
    shown = ["labelling", "class", "dose", "readout", "change", "random mean", "p", "verdict"]
    display(by_dose[shown]
            .style.format(precision=3, subset=["change", "random mean", "p"]).hide(axis="index"))

# %% [markdown]
# Dose by dose, the zero-shot comparison has a control for {glue:text}`dose_reach` latents.
# The doses whose zero-shot change differs from matched random sets at the 5% level:
# {glue:text}`dose_decided`.
# That is out of {glue:text}`n_dose_tests` zero-shot comparisons, of which about
# {glue:text}`dose_chance:.1f` would pass the 5% level by chance alone if no class did anything its
# mass does not.
# Read the curve, not one dose: a class whose first latents already cost more than random latents
# carrying as much holds what zero-shot classification needs; one that follows its random band
# costs what its mass costs.

# %% [markdown]
# ## Which classes the later chapters use
#
# MDS classes say on which side of the gap a latent fires, and {doc}`04_ground_truth` shows that
# this is not the modality its concept belongs to.
# The later chapters that edit embeddings by class therefore show two labellings side by side, both
# on the dictionary the ground-truth check chose (`comparison.CHOSEN`): the paper's MDS classes
# (interval rule) and the classes of the method that chapter chose, which it names together with its
# accuracy per class, its controls and how far it falls short of perfect.

# %% [markdown]
# ## A real model at scale
#
# The same scores for a real CLIP on millions of pairs come from the command-line pipeline (see the
# README): `mdsgap embed`, `mdsgap train-sae` and `mdsgap score` write a run folder; they stream,
# resume after a kill, and spread over GPUs with `torchrun`.
# Set the parameter `run_dir` to that folder and this section shows the run's classes under every MDS
# variant; the book's build leaves it empty.

# %%
if run_dir:
    from mdsgap.pipeline.report import load_run

    run = load_run(run_dir)
    print(run["manifest"]["model"], "|", run["manifest"]["n_pairs"], "pairs |",
          len(run["scores"]), "latents")
    classes = run["scores"].filter(like="class_")
    display(classes.apply(pd.Series.value_counts).fillna(0).astype(int))
else:
    print("run_dir is empty: no pipeline run to show.")

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-mds-1
# The thresholds rule has one knob, `k_std`.
# Reclassify every feature set with `k_std` = 0.5 and 2 and compare the class counts with those
# above.
# ```
#
# ```{solution-start} ex-mds-1
# :class: dropdown
# ```

# %%
by_k = {}
for k in sorted({0.5, k_std, 2.0}):
    for name, st in stats.items():
        th = dominance.std_thresholds(scores[name], k=k, live=st.firing() >= min_pairs)
        lab = dominance.classify(scores[name], st.firing(), th, min_pairs=min_pairs)
        by_k[(name, k)] = dominance.class_counts(lab)
by_k = pd.DataFrame(by_k).T.fillna(0).astype(int).rename_axis(["feature set", "k_std"])
by_k.sort_index()

# %% [markdown]
# A larger `k_std` widens the band between the two thresholds, so features only ever move from
# ImgD and TxtD into CMD as it grows.
# Because each set's thresholds come from the spread of its own scores, the rule sizes the classes
# as much as the features do.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-mds-2
# Rerun the interval rule on the NCL features with a narrower (0.05) and a wider (0.2) cross-modal
# band.
# Where do the features that change class go?
# ```
#
# ```{solution-start} ex-mds-2
# :class: dropdown
# ```

# %%
by_band = {}
for b in sorted({0.05, band, 0.2}):
    lab, _, _ = dominance.classify_ci(stats["NCL"].boot_scores(), stats["NCL"].firing(), band=b,
                                      min_pairs=min_pairs)
    by_band[b] = dominance.class_counts(lab)
pd.DataFrame(by_band).T.fillna(0).astype(int).rename_axis("band")

# %% [markdown]
# A wider band lets more intervals fit inside it (more CMD) and leaves fewer wholly above or below
# it (fewer ImgD and TxtD); the uncertain features are those whose interval crosses an edge, so
# their number depends on how many intervals sit near the edges of the band.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-mds-3
# Can another reading of the formula rescue the TopK SAE?
# For each variant in `dominance.VARIANTS`, compute the share of live TopK latents whose score is
# below 0.05 or above 0.95.
# ```
#
# ```{solution-start} ex-mds-3
# :class: dropdown
# ```

# %%
live = stats["TopK"].firing() >= min_pairs
one_sided_by = pd.Series({v: float(((stats["TopK"].scores(v)[live] < 0.05)
                                     | (stats["TopK"].scores(v)[live] > 0.95)).mean())
                          for v in dominance.VARIANTS}, name="one-sided share")
glue("ex_one_sided_min", float(one_sided_by.min()))
one_sided_by.to_frame()

# %% [markdown]
# The smallest one-sided share over the four readings is {glue:text}`ex_one_sided_min:.2f`.
# Every reading divides the image side's activation by the two sides' total, so a latent that never
# fires on captions scores 1 under all of them: the problem lies in the latents, not in the formula.
#
# ```{solution-end}
# ```
