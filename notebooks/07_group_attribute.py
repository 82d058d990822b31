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
# (group-attribute)=
# # Probing and editing a group attribute
#
# {cite:t}`yan2026beyond` turn their modality classes into a probe of bias: CLIP reads gender from
# images unequally, and removing the features of one class hurts one gender's concept more than the
# other's ("feminine concepts are primarily preserved in ImgD, whereas male concepts are more
# affected by the removal of TextD"). Their study has no control for what the removed sets carry and
# no intervals. This chapter repeats it where the cause of the bias is known, with random sets
# matched on what they carry and intervals over seeds, and with the classes of the paper's MDS and
# of the best method of {doc}`04_ground_truth` side by side.
#
# The recipe of the edit is that of {doc}`03_modality_dominance`: encode, map to the latents of a
# sparse autoencoder, switch off the latents of one class, decode, and classify with the edited
# embedding.
#
# :::{admonition} What you will learn
# - how a spurious correlation in the training data makes a CLIP read one group worse, and how to
#   find where its errors fall;
# - how to label the latents of a sparse autoencoder by modality class in two ways, and how much
#   the two labellings disagree;
# - how to test whether removing a class of latents does more than removing random latents that
#   carry as much, the control the original study lacked;
# - why a class edit that does no more than its random sets says nothing about the class.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
n_seeds = 3  # seeds of fine-tuning, autoencoder and random sets (seed, seed + 1, ...)
group_factor = "outline"  # the world's group attribute (the shape's rim: dark or light)
confounded = "light"  # the group tied to the correlate in training (on a CSV: the group to compare)
correlate = "size"  # the factor the confounded group is tied to
correlate_value = "large"  # its value
strength = 1.0  # probability of the tie in training
finetune_steps = 150  # steps of fine-tuning on the correlated world (not the sweeps' parameter)
min_pairs = 5  # a latent firing on fewer pairs has no class
n_random_sets = 200  # matched random latent sets per class and seed
doses = [4, 8, 16, 32, 64]  # a class's first k latents in score order, against matched sets
group_column = "group"  # on a CSV: the column that holds each image's group
group_prompts = {}  # on a CSV: {group: [prompt, ...]} for zero-shot reading of the group

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from mdsgap import experiment, features, plots, stats, world
from mdsgap.attribution import comparison
from mdsgap.clip import datasets, embeddings, training
from mdsgap.edit import control, groups
from mdsgap.book import check_declared, glue

# %%
S = experiment.ExperimentConfig.from_params(globals())
EX = features.ExtractorsConfig.from_params(globals())
check_declared(globals(), dict(
    n_seeds=int, group_factor=str, confounded=str, correlate=str,
    correlate_value=str, strength=float, finetune_steps=int, min_pairs=int, n_random_sets=int,
    group_column=str, group_prompts=dict, doses=list))
if not S.on_world and len(group_prompts) < 2:
    raise ValueError("On a CSV, set group_column (the CSV's column of groups) and "
                     "group_prompts = {group: [prompt, ...]} for at least two groups.")
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## A bias with a known cause
#
# The group attribute is the rim of the shape, dark or light: every image shows it, and in this
# chapter every caption names it ("a red circle with a light rim"). The chapter's CLIP is that of
# {doc}`01_measuring_gap`, fine-tuned on a world where the two groups are not alike: every
# light-rimmed training shape is large. On small shapes the rim is a thin line of a pixel or two, so
# a model can learn the shortcut "small means dark". Everything is measured on balanced held-out
# pairs, where rim and size are independent.

# %%
seeds = [S.seed + i for i in range(n_seeds)]
on_world = S.on_world
if on_world:  # on a CSV, `confounded` names one of the CSV's groups instead
    study = groups.GroupStudyConfig(group_factor, confounded, correlate, correlate_value, strength,
                              finetune_steps)
glue("strength", strength)
glue("finetune_steps", finetune_steps)

# %% mystnb={"figure": {"caption": "Twelve pairs of the correlated world the CLIP is fine-tuned on, each image under its caption.", "name": "fig-group-sample"}}
if on_world:  # a CSV has no fine-tuning world to show
    sample = world.generate(study.training_world(), 12, seed=S.seed, split="gallery")
    plots.image_grid(sample.images, sample.captions, ncols=6, wrap=26)
    plt.show()

# %% [markdown]
# {numref}`fig-group-sample` shows a sample of the fine-tuning pairs. Every light rim sits on a
# large shape (with probability {glue:text}`strength:.2f`); each seed fine-tunes for
# {glue:text}`finetune_steps` steps.

# %%
def study_clip(s: int):
    """The CLIP of seed s: fine-tuned on the correlated world, or the subject model on a CSV."""
    if not on_world:
        return experiment.subject(S).clip
    return training.cached_clip(study.train_config(S.train_config(), s), device=S.device).clip


# %%
def study_pairs(clip, n: int, split: str):
    """Balanced world pairs (or the CSV's rows) embedded by clip, with their identity and groups."""
    if on_world:
        p, src = embeddings.world_pairs(study.balanced_world(), n, S.seed, split)
        x, y = embeddings.embed_pairs(clip, p, src, progress=False)
        return p, x, y, embeddings.data_identity(p, src)
    p = datasets.load_csv(S.dataset_csv, sep=S.csv_sep, skip_bad=S.skip_bad_rows, limit=n,
                          keep=(group_column,), hint="set group_column to the CSV's group column")
    return p, *embeddings.embed_pairs(clip, p, None, progress=False), embeddings.data_identity(p)


# %%
def group_classes(clip):
    """The groups' class embeddings and names, and each test image's group as an index."""
    if on_world:
        return groups.class_embeddings(clip, study), list(study.groups)
    if not group_prompts:
        raise ValueError("On a CSV, give group_prompts = {group: [prompt, ...]} for every group.")
    return groups.prompt_classes(clip, group_prompts)


def group_index(p, names):
    values = p.factors[group_factor].astype(str) if on_world else p.columns[group_column]
    return groups.group_codes(values, names)


# %% [markdown]
# ## How the CLIP reads the groups
#
# For each seed: fine-tune, then read the group of {glue:text}`n_test` balanced held-out images
# zero-shot (the prompt ensemble of each group against the image embedding).

# %%
runs = {}
for s in seeds:
    clip = study_clip(s)
    test, tx, ty, _ = study_pairs(clip, S.n_test, "test")
    classes, names = group_classes(clip)
    g = group_index(test, names)
    runs[s] = dict(clip=clip, test=test, x=tx, classes=classes, names=names, groups=g,
                   reading=groups.readings(tx, classes, g))
glue("n_test", S.n_test)
names = runs[seeds[0]]["names"]
worse = names.index(confounded) if confounded in names else None

# %%
def group_accuracy(rows, i):
    """Group i's zero-shot accuracy: mean and 95% interval over seeds and images."""
    hits = [r.correct[r.group == i].to_numpy(float) for r in rows]
    return {"group": names[i], "quantity": "zero-shot accuracy (95% CI)",
            **dict(zip(stats.COLUMNS, stats.seed_interval(hits)))}


readings = [runs[s]["reading"] for s in seeds]
if worse is None:  # a CSV without a named group to compare: the group read worst
    worse = int(np.argmin([np.mean([r.correct[r.group == i].mean() for r in readings])
                           for i in range(len(names))]))
per_group = stats.formatted(pd.DataFrame([group_accuracy(readings, i) for i in range(len(names))]),
                            "group").rename_axis(None)
display(per_group)

# %%
gaps = [groups.accuracy_gap(r, worse) for r in readings]
mean, lo, hi = stats.interval(gaps)
glue("gap", mean)
glue("gap_ci", f"[{lo:.3f}, {hi:.3f}]")
glue("worse", names[worse])
glue("per_group", "; ".join(f"{n} {v}" for n, v in per_group.iloc[:, 0].items()))
glue("gap_real", "is" if lo > 0 else "is not clearly")

# %% [markdown]
# Zero-shot accuracy per group: {glue:text}`per_group`. The {glue:text}`worse` group is read worse
# by {glue:text}`gap:.3f` (95% interval over seeds {glue:text}`gap_ci`): the gap
# {glue:text}`gap_real` above zero.

# %% [markdown]
# Where the errors fall shows whether the shortcut is the cause: accuracy per group and value of the
# correlate, over all seeds.

# %%
if on_world:
    value_of = lambda s: runs[s]["test"].factors[correlate].astype(str).to_numpy()
    cells = pd.concat([r.assign(group=[names[i] for i in r.group], **{correlate: value_of(s)})
                       for s, r in zip(seeds, readings)])
    where = cells.pivot_table(index="group", columns=correlate, values="correct", aggfunc="mean")
    other_value = [v for v in where.columns if v != correlate_value][0]
    glue("shortcut_cell", float(where.loc[confounded, other_value]))
    glue("other_value", other_value)
    display(where.style.format(precision=3))
else:
    glue("shortcut_cell", float("nan"))
    glue("other_value", "(no factors on a CSV)")

# %% [markdown]
# On the world, the {glue:text}`worse` group loses its accuracy where the shortcut misleads: on
# {glue:text}`other_value` shapes it is read right {glue:text}`shortcut_cell:.2f` of the time, the
# combination the fine-tuning never showed.

# %% [markdown]
# ## Two labellings of the latents
#
# For each seed the dictionary that {doc}`04_ground_truth` chose ({glue:text}`chosen_tool`) is
# trained on {glue:text}`n_pairs` balanced pairs embedded by that seed's CLIP, and its latents are
# labelled twice: by the paper's MDS (interval rule) and by the probe partners, the method that
# chapter chose (`comparison.CHOSEN`).

# %%
LABELLINGS, tool = comparison.LABELLINGS, comparison.CHOSEN[0]
opts = comparison.MethodConfig(min_pairs=min_pairs, seed=S.seed)
for s in seeds:
    r = runs[s]
    _, x, y, data_id = study_pairs(r["clip"], S.n_feature_pairs, "features")
    fs, model = features.sae_features(x, y, EX.config(tool, s), r["clip"].identity, data_id,
                                      progress=False)
    zx, zy = features.encode_all(fs, x), features.encode_all(fs, y)
    r["sae"], r["carry"] = model, control.carried(zx, zy)
    r["atts"] = {name: comparison.attribute(m, zx, zy, opts=opts, x=x.numpy(), y=y.numpy())
                 for name, m in LABELLINGS.items()}
    r["labels"] = {name: a.labels for name, a in r["atts"].items()}
glue("n_pairs", S.n_feature_pairs)
glue("chosen_tool", f"the {tool} SAE")

# %%
sizes = pd.DataFrame({(name, s): pd.Series(r["labels"][name]).value_counts()
                      for s, r in runs.items() for name in LABELLINGS}).T
sizes = sizes.reindex(columns=["ImgD", "TxtD", "CMD"], fill_value=0).fillna(0).astype(int)
sizes.index.names = ["labelling", "seed"]
display(comparison.labelled(sizes))

# %% [markdown]
# Class sizes per seed. The two labellings disagree on how many latents each class holds, so a
# class's effect is only read against random sets of its own size.

# %% [markdown]
# ## Removing each class, against matched random sets
#
# Each class of each labelling is switched off in the test images and in the group prompts alike.
# Its control is {glue:text}`n_random_sets` random sets drawn from the latents outside the class,
# each member replaced by a latent that carries about as much (energy and firing over images and
# captions; `mdsgap.edit.control`), so a class and its controls remove the same mass. Every readout
# is a change from the plain reconstruction: the accuracy gap between the groups, and each group's
# accuracy and share of its zero-shot margin kept.

# %%
parts = []
for s, r in runs.items():
    r["readout"] = groups.removal_readout(r["sae"], r["x"], r["classes"], r["groups"], worse, names)
    cfg = control.ControlConfig(n_random=n_random_sets, seed=s)
    for name, labels in r["labels"].items():
        got = control.compare(r["readout"], labels, r["carry"], cfg)
        parts.append(got.assign(seed=s, labelling=name))
edits = pd.concat(parts, ignore_index=True)
effects = control.verdicts(edits, by=("labelling", "class", "readout"))
glue("n_random_sets", n_random_sets)

# %% mystnb={"figure": {"caption": "Change of each group's zero-shot accuracy when each class is removed, beyond the change that matched random sets cause (95% interval over seeds); filled points differ from random at the 5% level (combined permutation test).", "name": "fig-group-removal"}}
accuracy = effects[effects.readout.str.startswith("accuracy ")]
plots.class_effects(accuracy.assign(factor=accuracy.readout.str.removeprefix("accuracy ")),
                    ylabel="accuracy change beyond random")
plt.show()

# %% [markdown]
# {numref}`fig-group-removal` gives, for each group and class, how much more (above zero) or less
# accurately the group is read after the class's removal than after removing matched random sets.

# %% [markdown]
# ## Does any class edit close the gap?
#
# The accuracy gap between the groups after each edit, as a change from the plain reconstruction
# (negative: the gap shrinks), beside the change of matched random sets, with the combined p-value
# and the verdict:

# %%
closing = effects[effects.readout == "gap"]
shown = ["labelling", "class", "size", "change", "random mean", "value", "low", "high", "p",
         "unmatched", "verdict"]
display(comparison.labelled(closing[shown]).style.format(precision=3, subset=shown[2:9])
        .hide(axis="index"))


# %%
def beyond(table, name):
    """Classes (and groups) of a labelling whose change differs from their matched random sets'."""
    d = table[(table.labelling == name) & table.verdict.isin(["above", "below"])]
    return ", ".join(f"{w}: {v:+.2f} beyond random" for w, v in zip(d["class"] + " " + d.readout,
                                                                    d.value)) or "none"


# %%
for name in LABELLINGS:
    glue(f"beyond_{name}", beyond(closing, name))
lacking = closing[closing.verdict == "no control"]
glue("gap_no_control", ", ".join(lacking.labelling.map(comparison.label) + ": " + lacking["class"])
     or "none")
gaps = edits[(edits.readout == "gap") & (edits.note == "")]
glue("random_range", f"{gaps['random 2.5%'].min():+.2f} to {gaps['random 97.5%'].max():+.2f}"
     if len(gaps) else "(no class has a matched control)")
sized = gaps.groupby(["labelling", "class"], sort=False)["size"].mean()
glue("controlled", ", ".join(f"{comparison.label(n)}: {c} (size {s:.0f})"
                             for (n, c), s in sized.items()) or "none")
decided = effects[effects.verdict.isin(["above", "below", "within"])]
glue("n_verdicts", len(decided))
glue("n_beyond", int(decided.verdict.isin(["above", "below"]).sum()))
glue("n_by_chance", 0.05 * len(decided))

# %% [markdown]
# Classes whose edit moves the gap differently from their matched random sets:
# {glue:text}`beyond_mds` for the paper's MDS, {glue:text}`beyond_partner` for the probe partners.
# Classes that have no matched control (too large a share of the classified latents: random sets
# from the rest would share most of their latents): {glue:text}`gap_no_control`.
# The matched random sets alone move the gap anywhere from {glue:text}`random_range` (their 95%
# ranges over seeds and the classes that have a control: {glue:text}`controlled`), the scale a
# class's own change has to stand out against. Of the
# {glue:text}`n_verdicts` verdicts of this chapter, {glue:text}`n_beyond` differ from random at the
# 5% level; about {glue:text}`n_by_chance:.1f` would by chance alone.

# %% [markdown]
# ### Dose by dose
#
# A class that holds most of the classified latents has no control as a whole, but its first
# latents do. Each class loses its first $k$ latents in score order (the most dominant first; for
# CMD the most balanced), for $k$ = {glue:text}`dose_list`, against $k$ matched latents drawn
# outside the *whole* class ({numref}`fig-group-dose`), in every seed; a class's curve ends at its
# size or at the first dose whose random sets would share most of their latents.

# %%
parts = []
for s, r in runs.items():
    cfg = control.ControlConfig(n_random=n_random_sets, seed=s)
    for name, att in r["atts"].items():
        rank = control.score_rank(att.labels, att.scores)
        got = control.dose_response(r["readout"], att.labels, rank, r["carry"], doses, cfg)
        parts.append(got.assign(seed=s, labelling=name))
dose = pd.concat(parts, ignore_index=True)
by_dose = control.verdicts(dose, by=("labelling", "class", "dose", "readout"))
glue("dose_list", ", ".join(str(d) for d in doses))

# %% mystnb={"figure": {"caption": "Change of the accuracy gap between the groups as each class loses its first k latents in score order (lines, mean over seeds), beside matched random sets of k latents drawn outside the class (shaded: their 95% range; dashed: the value for a set of the class's totals), under each labelling. Negative: the gap shrinks.", "name": "fig-group-dose"}}
plots.dose_response(dose[dose.readout == "gap"])
plt.show()

# %%
gap_dose = comparison.labelled(by_dose[by_dose.readout == "gap"])  # for the page
tested = gap_dose[gap_dose.verdict != "no control"]
reach = tested.groupby(["labelling", "class"], sort=False).dose.max()
glue("dose_reach", ", ".join(f"{c} ({n}) up to {int(k)}" for (n, c), k in reach.items()) or "none")
decided = tested[tested.verdict.isin(["above", "below"])]
glue("dose_decided", "; ".join(f"{r['class']} ({r.labelling}) at {int(r.dose)} ({r.verdict}, "
                               f"p = {r.p:.3f})" for _, r in decided.iterrows()) or "none")
testable = tested[tested.verdict != "undecidable"]
glue("n_dose_tests", len(testable))
ranged = dose[(dose.readout == "gap") & (dose.note == "")]
glue("dose_random_range", f"{ranged['random 2.5%'].min():+.2f} to "
     f"{ranged['random 97.5%'].max():+.2f}" if len(ranged) else "(no dose has a control)")
glue("dose_chance", 0.05 * len(testable))

# %%
shown_dose = ["labelling", "class", "dose", "change", "random mean", "value", "low", "high", "p",
              "verdict"]
display(gap_dose[shown_dose].style.format(precision=3, subset=shown_dose[3:9]).hide(axis="index"))

# %% [markdown]
# Dose by dose, the gap has a matched control for {glue:text}`dose_reach` latents; the matched random
# sets of these doses move the gap anywhere from {glue:text}`dose_random_range`. The doses whose
# change of the gap differs from matched random sets at the 5% level (combined over seeds):
# {glue:text}`dose_decided`. That is out of {glue:text}`n_dose_tests` comparisons, of which about
# {glue:text}`dose_chance:.1f` would pass by chance alone if no class did anything its mass does
# not. The table lists every dose with its difference from random (value, 95% interval over seeds).

# %% [markdown]
# ## Which class carries each group?
#
# The paper's asymmetry is about how much of each group's concept survives each removal. Here that
# is the share of a group's zero-shot margin (the cosine to its own prompts minus the best other
# group's) kept after the edit, as a change from the plain reconstruction, beside matched random
# sets:

# %%
carried = effects[effects.readout.str.startswith("kept ")].assign(
    group=lambda d: d.readout.str.removeprefix("kept "))
display(comparison.labelled(carried[["labelling", "group"] + shown[1:]]).style.format(
    precision=2, subset=shown[2:9]).hide(axis="index"))


# %%
def hurt_most(name):
    """Per group: the class whose removal costs it most margin, and how it compares with random."""
    d = carried[carried.labelling == name]
    out = []
    for g in names:
        row = d[d.group == g].sort_values("change").iloc[0]
        decided = row.verdict in ("above", "below", "within")
        how = f"{row.verdict} random" if decided else row.verdict
        out.append(f"the {g} group's by removing {row['class']} ({row.change:+.2f}, {how})")
    return "; ".join(out)


# %%
def asymmetric(name):
    """The paper's pattern: one group hurt most by ImgD removal, the other by TxtD, each below its
    matched random sets."""
    d = carried[carried.labelling == name]
    worst = [d[d.group == g].sort_values("change").iloc[0] for g in names]
    paired = {r["class"] for r in worst} == {"ImgD", "TxtD"}
    return paired and all(r.verdict == "below" for r in worst)


for name in LABELLINGS:
    glue(f"hurt_{name}", hurt_most(name))
    glue(f"kept_beyond_{name}", beyond(carried, name))
seen = [comparison.label(name) for name in LABELLINGS if asymmetric(name)]
glue("asymmetry", f"appears under {', '.join(seen)}" if seen else "appears under neither labelling")

# %% [markdown]
# Under the paper's MDS classes the concept is hurt most as follows: {glue:text}`hurt_mds`. Under
# the probe partners' classes: {glue:text}`hurt_partner`. Edits that cost a group more than their
# matched random sets do, or less: {glue:text}`kept_beyond_mds` (paper's MDS) and
# {glue:text}`kept_beyond_partner` (probe partners). The paper's asymmetry, one group losing most
# to ImgD removal and the other to TxtD removal, each beyond its matched random sets,
# {glue:text}`asymmetry`.

# %% [markdown]
# ## What this says
#
# The bias here has a known cause, a shortcut taught by the training data, and the CLIP's reading of
# the group shows it. Whether a modality class "holds" one group's concept is a question the matched
# control answers: a class edit that does no more than random latents carrying as much says nothing
# about the class. On a real dataset the same cells run with `dataset_csv`, `group_column` and
# `group_prompts` (and `csv_sep` for open_clip's tab-separated files), for any open_clip model.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-group-1
# The two labellings gave different class sizes. Do they at least agree on the latents they both
# classify? For the first seed, cross-tabulate each latent's class under the paper's MDS against
# its class under the probe partners, and print, for every seed, the share of latents given the
# same label.
# ```
#
# ```{solution-start} ex-group-1
# :class: dropdown
# ```

# %%
for s, r in runs.items():
    mds, partner = (np.asarray(r["labels"][name]) for name in LABELLINGS)
    print(f"seed {s}: the two labellings agree on {np.mean(mds == partner):.2f} of the latents")
first = runs[seeds[0]]["labels"]
pd.crosstab(*(pd.Series(first[name], name=comparison.label(name)) for name in LABELLINGS))

# %% [markdown]
# The diagonal of the table holds the latents both labellings put in the same class; everything
# off it is a latent whose "modality" depends on the method that names it. An edit of "the ImgD
# latents" is only as well defined as that diagonal is full.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-group-2
# Is it the class or its mass that moves the gap? From `edits`, list for the gap each class's size
# and change beside the mean change of its matched random sets, and how well they were matched
# (the share of stand-ins within tolerance, and their total energy as a share of the class's).
# ```
#
# ```{solution-start} ex-group-2
# :class: dropdown
# ```

# %%
columns = ["seed", "labelling", "class", "size", "change", "random mean", "matched",
           "energy ratio"]
shown_gaps = comparison.labelled(gaps[columns].sort_values(["labelling", "size"]))
shown_gaps.style.format(precision=3).hide(axis="index")

# %% [markdown]
# Where a class's change sits close to its matched random sets' mean, what the class removes does
# the work, not which latents they are; only a verdict other than "within" says something about the
# class itself, and only where the sets matched well.
#
# ```{solution-end}
# ```
