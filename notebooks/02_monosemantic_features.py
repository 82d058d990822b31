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
# (monosemantic-features)=
# # Monosemantic features
#
# An embedding dimension of CLIP rarely means one thing.
# To ask which *concepts* belong to vision and which to language, {cite:t}`yan2026beyond` first
# turn the embeddings into features that are meant to be read one at a time:
#
# - **sparse autoencoders** (SAEs) trained on image and text embeddings together, whose latents
#   each fire on a small share of samples;
# - the features of a **non-negative contrastive** (NCL) head {cite}`wang2024nonnegative`, a linear
#   map with non-negative outputs trained with the CLIP loss on the frozen embeddings.
#
# The raw embedding dimensions are the baseline every tool must beat.
# This chapter trains the tools on the small CLIP of {doc}`01_measuring_gap` and asks two
# questions: how well does each reconstruct each modality, and are its features coherent, in the
# sense that the samples on which a feature fires most look alike to the model?
#
# :::{admonition} What you will learn
# - how sparse autoencoders (TopK, BatchTopK, ReLU) and an NCL head turn CLIP embeddings into
#   non-negative features, and how well each reconstructs images and captions separately;
# - how the coherence scores EmbSim and WinRate are computed, and why their random sets must match
#   the image/caption mix of the top samples;
# - why scores measured in CLIP's own space are partly circular, and how an untrained SAE and a
#   ground-truth factor space expose it;
# - how to read a latent from the samples on which it fires most.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
n_seeds = 3  # extractor seeds for the default tools (TopK SAE, NCL)
m_values = [10, 20, 50]  # sizes of the top-m sets EmbSim and WinRate are computed on
n_random = 200  # random sets per feature behind WinRate

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from mdsgap import experiment, features, gap, plots
from mdsgap.attribution import groundtruth
from mdsgap.features import interpretability, sae
from mdsgap.book import check_declared, glue

S = experiment.ExperimentConfig.from_params(globals())
EX = features.ExtractorsConfig.from_params(globals())
check_declared(globals(), dict(n_seeds=int, m_values=list, n_random=int))
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## The pairs and the tools
#
# The tools learn from a fresh set of {glue:text}`n_pairs` pairs embedded by the chapter's CLIP; the
# same embeddings are scored below and in the next two chapters.
# Every tool maps a unit-normalised embedding of either modality to non-negative activations:
#
# | tool | what it is |
# |---|---|
# | raw | each embedding dimension split into its positive and negative half |
# | TopK | an SAE keeping each sample's $k$ largest latents {cite}`gao2024scaling` (the default) |
# | BatchTopK | as TopK, but $k$ per sample on average over a batch {cite}`bussmann2024batchtopk` |
# | ReLU | an SAE with ReLU latents and an $L_1$ penalty |
# | NCL | a linear map with non-negative outputs trained with the CLIP loss |
# | random SAE | a TopK SAE left at its random initialisation: a control for every score below |
#
# Every SAE has a unit-norm decoder, a pre-bias initialised at the data's geometric median, and
# (TopK family) the AuxK loss that lets dead latents learn from the residual.

# %%
subject = experiment.subject(S)
pairs, x, y, data_id = experiment.feature_pairs(S, subject.clip, S.n_feature_pairs)
glue("n_pairs", len(x))

seeds = [S.seed + i for i in range(n_seeds)]
sets, saes = features.build_sets(x, y, EX, S.seed, subject.clip.identity, data_id)
random_sae = sae.SparseAutoencoder(x.shape[1], EX.sae_configs(S.seed)["TopK"]).eval()
sets["random SAE"] = features.FeatureSet("random SAE", EX.sae_latents,
                                         lambda e: random_sae.encode(gap.normalize(e).float()))
more_seeds = {s: features.build_sets(x, y, EX, s, subject.clip.identity, data_id,
                                     tools=("TopK", "NCL"))[0]
              for s in seeds[1:]}
print(subject.label, "|", len(x), "pairs |", ", ".join(sets))

# %% [markdown]
# ## Reconstruction, per modality
#
# Each autoencoder is scored on each modality separately: $L_0$ (active latents per embedding), the
# fraction of variance it leaves unexplained (FVU), and the share of latents that never fire on that
# modality.

# %%
xn, yn = gap.normalize(x).float(), gap.normalize(y).float()
saes_scored = {**saes, "random SAE": random_sae}
sae_table = pd.concat({name: sae.metrics_by_modality(model, xn, yn)
                       for name, model in saes_scored.items()})
sae_table.index.names = ["SAE", "modality"]
glue("topk_fvu_image", sae_table.loc[("TopK", "image"), "FVU"])
glue("topk_fvu_text", sae_table.loc[("TopK", "text"), "FVU"])
glue("topk_l0", sae_table.loc[("TopK", "both"), "L0"])
glue("random_fvu", sae_table.loc[("random SAE", "both"), "FVU"])
glue("sae_k", EX.sae_k)
sae_table.style.format(precision=3)

# %% mystnb={"figure": {"caption": "Fraction of the variance of each modality that each autoencoder leaves unexplained; the random SAE is the untrained control.", "name": "fig-mono-fvu"}}
fig, ax = plt.subplots(figsize=(7, 3))
sns.barplot(data=sae_table.reset_index().query("modality != 'both'"), x="SAE", y="FVU",
            hue="modality", ax=ax)
ax.set(ylabel="fraction of variance unexplained", xlabel="")
plt.show()

# %% [markdown]
# The TopK SAE fires {glue:text}`topk_l0:.1f` latents per embedding, its $k$ = {glue:text}`sae_k`,
# and leaves {glue:text}`topk_fvu_image:.3f` of the image variance and
# {glue:text}`topk_fvu_text:.3f` of the text variance unexplained ({numref}`fig-mono-fvu`); the
# same SAE at its random initialisation leaves {glue:text}`random_fvu:.2f`.
# The two modalities can differ here because the SAE sees them as one cloud with two lobes (the gap
# of {doc}`01_measuring_gap`): latents spent on one lobe reconstruct nothing of the other.

# %% [markdown]
# ## Are the features coherent?
#
# {cite:t}`yan2026beyond` score features with two automatic metrics whose formulas they do not give.
# This book reads them as follows:
#
# - the **top-m set** of a feature is the $m$ samples, images and captions pooled, on which it fires
#   most;
# - **EmbSim** is the mean cosine similarity between the CLIP embeddings of distinct members of the
#   top-m set: a feature whose strongest samples look alike to the model scores high;
# - **WinRate** is the share of random sets that the feature's top-m set beats on EmbSim, where each
#   random set holds as many images and as many captions as the top-m set.
#
# Matching the composition matters: two images are more alike than an image and a caption (the cone
# effect and the gap), so without it any feature that fires on one modality would look coherent.
# A feature at chance has WinRate 1/2, whatever its modality.
#
# *Which* embedding the similarities are measured in matters more.
# In the CLIP space the features were built from, the top samples of any direction lie close
# together, so the scores are partly circular; the random SAE shows how much.
# The world offers an independent space: each sample's ground-truth factor values as a one-hot
# vector (an image carries the factors it shows, a caption the factors it names), where a cosine is
# the share of factor values two samples have in common.
# Every score is computed in both spaces, and, because the paper does not fix $m$, at
# $m \in$ {glue:text}`m_values`.

# %%
spaces = {"CLIP space": None}
if S.on_world:
    spaces["factor space"] = torch.as_tensor(groundtruth.factor_embedding(pairs.factors))
tool_seeds = {tool: {S.seed: fs} for tool, fs in sets.items()}
for s, more in more_seeds.items():
    for tool, fs in more.items():
        tool_seeds[tool][s] = fs
glue("m_values", ", ".join(map(str, m_values)))

# %% [markdown]
# Every feature set of every seed is scored in each space at each $m$.
# The third score, "vs random SAE", is the share of the random SAE's features that a feature beats
# on EmbSim (explained below).
# Each seed's score is its mean over features; the 95% intervals are t-intervals over those seed
# means (`stats.seed_interval`; a tool with one seed gets an interval over its features).

# %%
METRICS = ("EmbSim", "WinRate", "vs random SAE")
scores = interpretability.score_table(tool_seeds, x, y, spaces, m_values, n_random=n_random)
summary = interpretability.summarise_scores(scores, METRICS)

# %% mystnb={"figure": {"caption": "EmbSim, WinRate and the win rate against the random SAE for every tool, against the size m of the top-m set, in the CLIP space and in the ground-truth factor space; dotted lines mark chance.", "name": "fig-mono-coherence"}}
plots.coherence_by_m(summary)
plt.show()

# %%
wide = summary.pivot_table(index=["space", "tool"], columns=["metric", "m"], values="value")
wide.style.format(precision=3)


# %%
def at(space, tool, metric, m):
    """(mean, low, high) of one metric of one tool at one m."""
    r = summary[(summary.space == space) & (summary.tool == tool) & (summary.metric == metric)
                & (summary.m == m)]
    return r.iloc[0][["value", "low", "high"]].to_numpy(float)


def best_tool(space, m):
    """The trained tool whose features beat the random SAE's most often."""
    d = summary[(summary.space == space) & (summary.metric == "vs random SAE") & (summary.m == m)]
    return d[d.tool != "random SAE"].set_index("tool")["value"].idxmax()


# %%
m_mid = m_values[len(m_values) // 2]
for space, skey in (("CLIP space", "clip"), ("factor space", "factor")):
    for tool, key in (("TopK", "topk"), ("NCL", "ncl"), ("raw", "raw"), ("random SAE", "random")):
        for metric, mkey in (("WinRate", "win"), ("vs random SAE", "vs")):
            mean, lo, hi = at(space, tool, metric, m_mid) if space in spaces else [np.nan] * 3
            glue(f"{skey}_{key}_{mkey}", mean)
            ci = f"[{lo:.2f}, {hi:.2f}]" if space in spaces else "not measured"
            glue(f"{skey}_{key}_{mkey}_ci", ci)
    if space not in spaces:  # a CSV has no factor space
        glue(f"{skey}_best", "(none: the factor space needs the world's factors)")
        glue(f"{skey}_stable", "(not measured)")
        continue
    stable = all(best_tool(space, m) == best_tool(space, m_mid) for m in m_values)
    glue(f"{skey}_best", best_tool(space, m_mid))
    glue(f"{skey}_stable", "at every m" if stable else "not at every m")

# %%
glue("m_mid", m_mid)
glue("n_seeds", n_seeds)

# %% [markdown]
# At $m$ = {glue:text}`m_mid`, every tool's features beat composition-matched random sets almost
# always, in both spaces ({numref}`fig-mono-coherence`): in the CLIP space WinRate is
# {glue:text}`clip_topk_win:.2f` for the TopK SAE (95% CI {glue:text}`clip_topk_win_ci`),
# {glue:text}`clip_ncl_win:.2f` for NCL, {glue:text}`clip_raw_win:.2f` for the raw dimensions, and
# {glue:text}`clip_random_win:.2f` ({glue:text}`clip_random_win_ci`) for the **untrained** random
# SAE; in the factor space the random SAE reaches {glue:text}`factor_random_win:.2f`.
# Read this way, WinRate cannot tell a trained dictionary from a random one: the CLIP space is
# organised by the world's factors, so the top samples of *any* direction in it share factors.
#
# The third column is the control the question needs: the probability that a feature of the tool
# has a higher EmbSim than a feature of the random SAE (1/2 = no better than random directions).
# In the factor space the TopK SAE scores {glue:text}`factor_topk_vs:.2f`
# ({glue:text}`factor_topk_vs_ci`), NCL {glue:text}`factor_ncl_vs:.2f`
# ({glue:text}`factor_ncl_vs_ci`) and the raw dimensions {glue:text}`factor_raw_vs:.2f`
# ({glue:text}`factor_raw_vs_ci`).
# The most coherent trained tool by this measure is {glue:text}`factor_best`,
# {glue:text}`factor_stable` of $m \in$ {glue:text}`m_values`.
# Intervals are t-intervals over seeds ({glue:text}`n_seeds` for TopK and NCL); the other tools have
# one seed, and their intervals are over features.

# %% [markdown]
# ## What the features look like
#
# The strongest samples of the first few live TopK latents, images and captions pooled: a coherent
# latent shows one concept across its top row.

# %%
emb = torch.cat([x, y])
values, idx = interpretability.top_m(sets["TopK"].batches(emb), 6)
live = np.flatnonzero((values > 0).all(0).numpy())[:4]
for d in live:
    shown = [("image, paired with", pairs.captions[i]) if i < len(x) else
             ("caption", pairs.captions[i - len(x)]) for i in idx[:, d].numpy()]
    print(f"TopK latent {d}:", *[f"  [{kind}] {text}" for kind, text in shown], sep="\n")

# %% [markdown]
# Whether a latent fires on images, on captions or on both is the question of the next chapter,
# {doc}`03_modality_dominance`, which scores these same feature sets with the Modality Dominance
# Score.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-mono-1
# Find the TopK latent that encodes the background texture: for every latent, compute the
# correlation ratio $\eta^2$ (`groundtruth.eta_squared`) between its activation on the images and
# the images' texture, and list the textures of the images on which the best latent fires most.
# ```
#
# ```{solution-start} ex-mono-1
# :class: dropdown
# ```

# %%
if S.on_world:
    zx = features.encode_all(sets["TopK"], x)
    texture = pairs.factors["texture"].astype(str).to_numpy()
    eta = np.nan_to_num(groundtruth.eta_squared(zx, texture, min_support=5), nan=-1.0)
    best = int(eta.argmax())
    top = interpretability.top_samples(sets["TopK"], x, best)
    glue("ex_texture_latent", best)
    glue("ex_texture_eta", float(eta[best]))
    glue("ex_texture_values", ", ".join(texture[top]) if top is not None else "none")
else:
    glue("ex_texture_latent", "(none: a CSV dataset has no factor labels)")
    glue("ex_texture_eta", float("nan"))
    glue("ex_texture_values", "(none)")

# %% [markdown]
# The texture explains a share {glue:text}`ex_texture_eta:.2f` of the variance of latent
# {glue:text}`ex_texture_latent` over the images, and its top images have the textures
# {glue:text}`ex_texture_values`.
# A high share with one texture repeated at the top marks a texture detector; a low one means the
# texture is spread over latents that encode it together with other factors.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-mono-2
# Count on which side each TopK latent fires: mostly on images (over 95% of its firings), mostly on
# captions (under 5%), on both, or never.
# What does the answer say about the two lobes of {numref}`fig-mono-fvu`?
# ```
#
# ```{solution-start} ex-mono-2
# :class: dropdown
# ```

# %%
on_x = (features.encode_all(sets["TopK"], x) > 0).sum(0)
on_y = (features.encode_all(sets["TopK"], y) > 0).sum(0)
share = on_x / np.maximum(on_x + on_y, 1)
fired = on_x + on_y > 0
sides = pd.Series({"mostly images": (fired & (share > 0.95)).sum(),
                   "mostly captions": (fired & (share < 0.05)).sum(),
                   "both": (fired & (share >= 0.05) & (share <= 0.95)).sum(),
                   "never": (~fired).sum()})
glue("ex_sides_most", sides.idxmax())
sides.to_frame("TopK latents")

# %% [markdown]
# The largest group is {glue:text}`ex_sides_most`.
# Latents that fire on one side only reconstruct one lobe of the embedding cloud; the next chapter
# turns this share of firings into the Modality Dominance Score and asks what it really measures.
#
# ```{solution-end}
# ```
