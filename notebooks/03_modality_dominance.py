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
# {cite:t}`yan2026beyond` ask of each feature of a vision-language model: does it belong to vision, to
# language, or to both?
# Their answer is the **Modality Dominance Score** ({term}`MDS`), computed on features that are meant to
# be interpretable one by one: the latents of a sparse autoencoder trained on both modalities' embeddings,
# or the non-negative features of an NCL head {cite}`wang2024nonnegative`.
# Features are then sorted into vision-dominant ({term}`ImgD`), language-dominant ({term}`TxtD`) and
# cross-modal ({term}`CMD`) classes.
#
# This chapter computes MDS for the feature sets of {doc}`02_monosemantic_features` (the same cached
# extractors, on the same pairs), shows how the classes come out for each feature set and each reading of
# the formula, and repeats the paper's ablation with the control it lacked.

# %% tags=["parameters"]
profile = "ci"  # the profile that set these values (for the record)
seed = 0  # seed of the world, of training and of the feature extractors
n_train = 20_000  # world pairs the small CLIP trains on
train_steps = 1600  # optimiser steps of the CLIP
batch_size = 256  # pairs per CLIP step
temperature = 0.01  # fixed softmax temperature of CLIP training
learn_temperature = False  # learn the temperature instead
n_test = 2_000  # held-out pairs
clip_model = "mdsgap-small"  # open_clip architecture, or "local-dir:PATH"
clip_pretrained = ""  # "" trains the small CLIP; else a pretrained tag or checkpoint file
dataset_csv = ""  # "" for the synthetic world; else a CSV with columns filepath,title
skip_bad_rows = False  # leave out unreadable CSV rows instead of stopping
device = "auto"  # "auto", "cpu" or "cuda"
n_feature_pairs = 10_000  # pairs whose embeddings train the feature extractors and are scored
sae_latents = 256  # latents of each sparse autoencoder
sae_k = 8  # active latents per sample (TopK, BatchTopK)
sae_l1 = 0.003  # L1 coefficient of the ReLU SAE
sae_steps = 1500  # SAE training steps
ncl_features = 256  # features of the NCL head
ncl_steps = 1000  # NCL training steps
k_std = 1.0  # class thresholds at mean +- k_std standard deviations of MDS
min_pairs = 5  # a feature firing on fewer pairs is labelled rare
n_boot = 100  # bootstrap replicates for the interval classification
band = 0.1  # cross-modal band [0.5 - band, 0.5 + band] of the interval classification
n_random_sets = 20  # random latent sets per class in the removal ablation

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from mdsgap import dominance, editing, evaluation, experiment, features, plots
from mdsgap.book import glue
from mdsgap.params import check_declared

S = experiment.Settings.from_params(globals())
EX = features.Extractors.from_params(globals())
check_declared(globals(), dict(n_feature_pairs=int, k_std=float, min_pairs=int, n_boot=int, band=float,
                               n_random_sets=int))
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## The pairs and their embeddings
#
# The feature extractors learn from, and MDS is computed on, a fresh set of pairs embedded by the chapter's CLIP.

# %%
subject = experiment.subject(S)
pairs, x, y, data_id = experiment.feature_pairs(S, subject.clip, n_feature_pairs)
glue("n_pairs", len(x))
print(subject.label, "|", len(x), "pairs")

# %% [markdown]
# The feature sets are those of {doc}`02_monosemantic_features`: the raw dimensions (each split into its
# positive and negative half), three sparse autoencoders (TopK, BatchTopK, ReLU) and an NCL head.

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
stats = {name: dominance.dominance_stats(zip(fs.batches(x), fs.batches(y)), fs.n_features, n_boot=n_boot,
                                         seed=S.seed)
         for name, fs in sets.items()}
scores = {name: st.scores() for name, st in stats.items()}
thresholds = {name: dominance.std_thresholds(scores[name], k=k_std, live=st.firing() >= min_pairs)
              for name, st in stats.items()}

# %%
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
# The dashed lines are the class thresholds, mean $\pm$ {glue:text}`k_std` standard deviations of each
# feature set's scores (a line outside $[0, 1]$ is not drawn).

# %%
labels = {name: dominance.classify(scores[name], st.firing(), thresholds[name], min_pairs=min_pairs)
          for name, st in stats.items()}
counts = pd.DataFrame({name: dominance.class_counts(lab) for name, lab in labels.items()}).T.fillna(0).astype(int)
glue("k_std", k_std)
counts

# %% [markdown]
# ## A rule with uncertainty
#
# Thresholds at mean $\pm$ k std depend on the whole distribution: a feature's class can change when other
# features are added.
# A per-feature alternative asks whether a bootstrap interval of its MDS lies above, below or inside a
# cross-modal band around 0.5 (here of half-width {glue:text}`band`); features whose interval straddles an
# edge of the band are *uncertain*.

# %%
ci_labels = {name: dominance.classify_ci(st.boot_scores(), st.firing(), band=band, min_pairs=min_pairs)[0]
             for name, st in stats.items()}
glue("band", band)
pd.DataFrame({name: dominance.class_counts(lab) for name, lab in ci_labels.items()}).T.fillna(0).astype(int)

# %% [markdown]
# ## Does the reading of the formula matter?
#
# The paper does not publish its formula. We compare the default with two other readings: the share of
# total activation mass on the image side, and the share of firings on the image side.
# The table gives, for each feature set, the fraction of features whose class is the same under both
# readings (same thresholds rule).

# %%
agree = {}
for name, st in stats.items():
    live = st.firing() >= min_pairs
    row = {}
    for variant in ("mass", "frequency"):
        s = st.scores(variant)
        lab = dominance.classify(s, st.firing(), dominance.std_thresholds(s, k=k_std, live=live), min_pairs)
        row[f"ratio vs {variant}"] = float((lab[live] == labels[name][live]).mean()) if live.any() else np.nan
    agree[name] = row
agree = pd.DataFrame(agree).T
glue("agree_min", float(np.nanmin(agree.values)))
agree.style.format(precision=3)

# %% [markdown]
# Across feature sets and readings, at least a share {glue:text}`agree_min:.2f` of the live features keep their
# class.

# %% [markdown]
# ## What the SAE does to MDS
#
# With a gap as large as real CLIP's, the images and the texts occupy different regions, and a sparse
# autoencoder can reconstruct each region with its own latents.

# %%
s = scores["TopK"]
live = stats["TopK"].firing() >= min_pairs
one_sided = float(((s[live] < 0.05) | (s[live] > 0.95)).mean())
glue("topk_one_sided", one_sided)
glue("ncl_one_sided", float(((scores["NCL"] < 0.05) | (scores["NCL"] > 0.95))[stats["NCL"].firing() >= min_pairs].mean()))

# %% [markdown]
# A share {glue:text}`topk_one_sided:.2f` of the live TopK latents fire on one modality only (MDS below 0.05
# or above 0.95), against {glue:text}`ncl_one_sided:.2f` of the NCL features, which were trained to match
# the two sides of a pair.
# When nearly every score is 0 or 1, mean $\pm$ k std thresholds no longer separate three classes: which side
# a latent fires on says where the embedding sits, not what the concept is.
# Which of the two MDS measures is a question for ground truth, which the world provides.

# %% [markdown]
# ## Examples
#
# For one NCL feature of each class, the images and the captions on which it fires most (a side on which
# the feature never fires is said so rather than shown).

# %%
def top_examples(fs, d, m=6):
    """Indices of the m images and the m captions with the largest activation of feature d (None if silent)."""
    out = []
    for e in (x, y):
        a = np.concatenate([b[:, d].numpy() for b in fs.batches(e)])
        out.append(np.argsort(-a)[:m] if a.max() > 0 else None)
    return out


lab, s = labels["NCL"], scores["NCL"]
examples = {}
for cls in dominance.CLASSES:
    idx = np.flatnonzero(lab == cls)
    if len(idx):
        distance = np.abs(s[idx] - 0.5)
        examples[cls] = idx[np.argmin(distance) if cls == dominance.CMD else np.argmax(distance)]
for cls, d in examples.items():
    top_img, top_txt = top_examples(sets["NCL"], d)
    title = f"NCL feature {d}: {cls}, MDS {s[d]:.2f}"
    if top_img is None:
        print(title, "| fires on no image")
    else:
        images = pairs.images[top_img] if S.on_world else pairs.load_images(top_img)
        plots.image_grid(images, [pairs.captions[i] for i in top_img], ncols=6, size=1.5, title=title)
        plt.show()
    if top_txt is None:
        print("fires on no caption")
    else:
        print("top captions:", *[pairs.captions[i] for i in top_txt], sep="\n  ")


# %% [markdown]
# ## Removing a class, against a control
#
# The paper's ablation removes each class from the SAE's reconstruction of the embeddings and reports that
# removing the cross-modal class hurts least. A class's effect is only meaningful beside the effect of
# removing the same number of latents at random, so each class is compared with {glue:text}`n_random_sets`
# random sets of classified TopK latents of the same size.
# Zero-shot accuracy (mean over the zero-shot factors) and retrieval are measured on held-out pairs whose image
# embeddings, caption embeddings and zero-shot class embeddings all go through the same edit.

# %%
if S.on_world:
    test = experiment.test_data(S, subject.clip)
    classes = evaluation.zero_shot_classes(subject.clip)
    original = editing.downstream(test.x, test.y, classes, test.factors)
    glue("n_random_sets", n_random_sets)
    metrics = list(editing.METRICS)
    table = []
    for rule, lab in (("mean ± k std", labels["TopK"]), ("interval", ci_labels["TopK"])):
        removal = editing.class_removal(saes["TopK"], test.x, test.y, classes, test.factors, lab,
                                        n_random=n_random_sets, seed=S.seed)
        table.append(editing.against_random(removal).assign(rule=rule))
    table = pd.concat(table, ignore_index=True)
    base = removal[removal.kind == "none"].iloc[0]
    print("original embeddings:", {k: round(v, 3) for k, v in original.items()})
    print("TopK reconstruction:", {k: round(float(base[k]), 3) for k in metrics})
    display(table.style.format(precision=3))
else:
    print("The removal ablation needs the world's factors for zero-shot; skipped for a CSV dataset.")

# %%
if S.on_world:
    rules = list(table.rule.unique())
    fig, axes = plt.subplots(len(rules), 3, figsize=(12, 3.2 * len(rules)), squeeze=False)
    for (rule, metric), ax in zip([(r, m) for r in rules for m in metrics], axes.flat):
        d = table[(table.metric == metric) & (table.rule == rule)]
        ax.errorbar(d["class"], d["drop, random (mean)"],
                    yerr=[d["drop, random (mean)"] - d["random 2.5%"], d["random 97.5%"] - d["drop, random (mean)"]],
                    fmt="o", color="grey", capsize=4, label="random set, same size (95% range)")
        ax.scatter(d["class"], d["drop, class"], color="crimson", zorder=3, label="the class")
        ax.axhline(0, color="black", lw=0.8)
        ax.set(title=f"{metric} ({rule} rule)", ylabel="drop from the reconstruction")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    plt.show()

# %%
if S.on_world:
    zs = table[(table.metric == "zero-shot") & (table.rule == "interval")].set_index("class")
    least = zs["drop, class"].idxmin()
    glue("least_harmful", least)
    for cls in zs.index:
        glue(f"zs_drop_{cls}", zs.loc[cls, "drop, class"])
        glue(f"zs_rand_{cls}", zs.loc[cls, "drop, random (mean)"])
        glue(f"zs_size_{cls}", int(zs.loc[cls, "size"]))
    sizes = ", ".join(f"{c} {int(zs.loc[c, 'size'])}" for c in zs.index)
    glue("class_sizes", sizes)
    glue("cmd_note", "" if dominance.CMD in zs.index else
         " The TopK SAE has no cross-modal latent under this rule at all, so the paper's headline comparison "
         "(removing CMD hurts least) cannot even be posed for it.")
    beyond = [c for c in zs.index if not zs.loc[c, "random 2.5%"] <= zs.loc[c, "drop, class"] <= zs.loc[c, "random 97.5%"]]
    glue("beyond_random", ", ".join(beyond) if beyond else "none")
    glue("least_harmful_is_cmd", ("as the paper reports" if least == dominance.CMD else
                                  "unlike the paper's report") + ("" if least in beyond else
                                  ", though a random set of its size costs as much"))

# %% [markdown]
# With the thresholds rule the TopK latents split badly (their scores sit at 0 and 1), so the text below reads
# the interval rule's classes; the figure shows both.
# Removing {glue:text}`least_harmful` costs the least zero-shot accuracy ({glue:text}`least_harmful_is_cmd`),
# but the classes differ in size ({glue:text}`class_sizes` latents), and a larger set removes more of the
# reconstruction whatever it holds.
# Against random sets of the same size, the classes whose zero-shot drop falls outside the random sets'
# 95% range are: {glue:text}`beyond_random`.
# Only such a difference says something about the class rather than its size.{glue:text}`cmd_note`

# %% [markdown]
# ## Which classes the later chapters use
#
# MDS classes say on which side of the gap a latent fires, and {doc}`04_ground_truth` shows that this is
# not the modality its concept belongs to. The later chapters that edit embeddings by class therefore show
# two labellings side by side: the paper's MDS classes (interval rule, as above) and the classes of the best-ranked method of the
# ground-truth check, which that chapter names together with its accuracy per class, its controls and how
# far it falls short of perfect.
