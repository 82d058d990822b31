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
# This chapter builds those feature sets for the small CLIP of {doc}`01_measuring_gap`, computes MDS, and
# shows how the classes come out for each feature set and each reading of the formula.

# %% tags=["parameters"]
profile = "ci"  # the profile that set these values (for the record)
seed = 0  # seed of the world, of training and of the feature extractors
n_train = 20_000  # world pairs the small CLIP trains on
train_steps = 800  # optimiser steps of the CLIP
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

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mdsgap import dominance, embeddings, experiment, features, gap, ncl, plots, sae, world
from mdsgap.book import glue
from mdsgap.params import check_params

S = experiment.Settings.from_params(globals())
check_params(dict(n_feature_pairs=n_feature_pairs, sae_latents=sae_latents, sae_k=sae_k, sae_l1=sae_l1,
                  sae_steps=sae_steps, ncl_features=ncl_features, ncl_steps=ncl_steps, k_std=k_std,
                  min_pairs=min_pairs, n_boot=n_boot, band=band),
             dict(n_feature_pairs=int, sae_latents=int, sae_k=int, sae_l1=float, sae_steps=int, ncl_features=int,
                  ncl_steps=int, k_std=float, min_pairs=int, n_boot=int, band=float))
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## The pairs and their embeddings
#
# The feature extractors learn from, and MDS is computed on, a fresh set of pairs embedded by the chapter's CLIP.

# %%
subject = experiment.subject(S)
if S.on_world:
    pairs, source = embeddings.world_pairs(world.WorldConfig(), n_feature_pairs, S.seed, "features")
else:
    pairs, source = experiment.load_pairs(S, n_feature_pairs)
x, y = embeddings.embed_pairs(subject.clip, pairs, source)
data_id = embeddings.data_identity(pairs, source)
glue("n_pairs", len(x))
print(subject.label, "|", len(x), "pairs")

# %% [markdown]
# ## Three kinds of features
#
# - **Raw dimensions**: each embedding dimension, split into its positive and negative half so that every
#   feature is a non-negative activation, as MDS needs.
# - **Sparse autoencoders** trained on the image and text embeddings together: TopK, BatchTopK and
#   ReLU with an L1 penalty, each with a unit-norm decoder and a pre-bias at the data's geometric median.
# - An **NCL head**: one linear map with non-negative outputs, trained with the CLIP loss on the pairs.

# %%
sae_cfgs = [sae.SAEConfig(n_latents=sae_latents, activation=act, steps=sae_steps, seed=S.seed)
            for act in (sae.TopK(sae_k), sae.BatchTopK(sae_k), sae.ReLU(sae_l1))]
sets, saes = {}, {}
sets["raw"] = features.raw_features(x.shape[1])
for cfg in sae_cfgs:
    fs, model = features.sae_features(x, y, cfg, subject.clip.identity, data_id)
    sets[type(cfg.activation).__name__], saes[type(cfg.activation).__name__] = fs, model
sets["NCL"], ncl_head = features.ncl_features(x, y, ncl.NCLConfig(n_features=ncl_features, steps=ncl_steps,
                                                                   seed=S.seed), subject.clip.identity, data_id)

# %% [markdown]
# Each autoencoder is scored on each modality separately: $L_0$ (active latents per embedding), the fraction
# of variance it leaves unexplained (FVU) and the share of latents that never fire.

# %%
xn, yn = gap.normalize(x).float(), gap.normalize(y).float()
sae_table = pd.concat({name: sae.metrics_by_modality(model, xn, yn) for name, model in saes.items()})
sae_table.style.format(precision=3)

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
