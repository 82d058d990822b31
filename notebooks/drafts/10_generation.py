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
# (generation)=
# # Modality-specific control of image generation
#
# The last application of {cite:t}`yan2026beyond` edits the embedding that conditions an image
# generator: Stable unCLIP draws an image from a CLIP image embedding, so removing the features of
# one modality class from that embedding should change what is drawn in a class-specific way. This
# chapter builds the same pipeline at the world's scale with diffusers (a small diffusion decoder
# conditioned on the world CLIP's image embedding, and a prior from captions to the image side),
# reads what each generated image shows with a classifier trained on real world images, and measures
# how each factor of the drawn image moves when each class, or a random set of the same size, is
# removed.

# %% tags=["parameters"]
profile = "ci"  # the profile that set these values (for the record)
seed = 0  # first seed; edits repeat for seed, seed + 1, ...
n_seeds = 3  # seeds of the autoencoder, the random sets and the sampling noise
n_train = 20_000  # world pairs the small CLIP trains on
train_steps = 1600  # optimiser steps of the CLIP
batch_size = 256  # pairs per CLIP step
temperature = 0.01  # fixed softmax temperature of CLIP training
learn_temperature = False  # learn the temperature instead
n_test = 2_000  # held-out pairs
clip_model = "mdsgap-small"  # open_clip architecture, or "local-dir:PATH"
clip_pretrained = ""  # "" trains the small CLIP; else a pretrained tag or checkpoint file
device = "auto"  # "auto", "cpu" or "cuda"
n_feature_pairs = 10_000  # pairs whose embeddings train the autoencoder and are scored
sae_latents = 256  # latents of the TopK sparse autoencoder
sae_k = 8  # active latents per sample
sae_steps = 1500  # SAE training steps
min_pairs = 5  # a latent firing on fewer pairs has no class
resolution = 16  # side of the generated images
decoder_channels = [32, 64]  # UNet widths per level
decoder_steps = 1500  # decoder training steps
decoder_images = 12_000  # world images the decoder trains on
reader_steps = 600  # reader training steps
ddim_steps = 20  # sampling steps
guidance = 2.0  # classifier-free guidance weight
prior_steps = 600  # steps of the MLP prior
n_generate = 300  # held-out embeddings decoded for the quality bar
n_edit = 96  # held-out embeddings decoded per edit
n_random_sets = 2  # random latent sets per class and seed
unclip_folder = ""  # a local Stable unCLIP pipeline folder: also draw the edits with it (real path)
unclip_steps = 20  # its sampling steps

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from mdsgap import (comparison, decoder, editing, experiment, features, plots, prior, reader, stats,
                    unclip)
from mdsgap.book import glue
from mdsgap.params import check_declared

# %%
S = experiment.Settings.from_params(globals())
EX = features.Extractors.from_params(globals())
check_declared(globals(), dict(
    n_seeds=int, n_feature_pairs=int, min_pairs=int, resolution=int, decoder_channels=list,
    decoder_steps=int, decoder_images=int, reader_steps=int, ddim_steps=int, guidance=float,
    prior_steps=int, n_generate=int, n_edit=int, n_random_sets=int, unclip_folder=str,
    unclip_steps=int))
sns.set_theme(style="whitegrid", context="notebook")
seeds = [S.seed + i for i in range(n_seeds)]

# %% [markdown]
# ## A reader for generated images
#
# Generated images carry no labels, so a small CNN trained on real world images (at the decoder's
# resolution) reads their factors. Its accuracy on real held-out images bounds what it can say about
# generated ones:

# %%
read_cfg = reader.ReaderConfig(resolution=resolution, steps=reader_steps, seed=S.seed)
factor_reader = reader.trained_reader(read_cfg)
subject = experiment.subject(S)
test, _ = experiment.load_pairs(S, n_generate)
on_real = reader.accuracy(reader.read(factor_reader, test.images), test.factors)
glue("reader_real", ", ".join(f"{f} {v:.2f}" for f, v in on_real.items()))
on_real.to_frame("reader accuracy, real images").T.style.format(precision=3)

# %% [markdown]
# ## The decoder
#
# A diffusers `UNet2DModel` at {glue:text}`resolution`×{glue:text}`resolution` pixels with the CLIP
# image embedding added to its timestep embedding (through a small MLP), trained for
# {glue:text}`decoder_steps` steps on {glue:text}`decoder_images` world images to predict the clean
# image from a noised one; one condition in ten is dropped so sampling can use classifier-free
# guidance (weight {glue:text}`guidance`, {glue:text}`ddim_steps` DDIM steps).

# %%
dec_cfg = decoder.DecoderConfig(resolution=resolution, channels=tuple(decoder_channels),
                                steps=decoder_steps, n_images=decoder_images, seed=S.seed)
model, curve = decoder.trained_decoder(subject.clip, dec_cfg)
for name in ("resolution", "decoder_steps", "decoder_images", "guidance", "ddim_steps"):
    glue(name, globals()[name])
ax = curve.plot(x="step", y="loss", legend=False, figsize=(5, 3))
ax.set(ylabel="training loss (MSE to the clean image)")
plt.show()

# %% [markdown]
# Training loss of the decoder.
#
# ## Does it draw what the embedding says?
#
# Each of {glue:text}`n_generate` held-out images is embedded by the CLIP and drawn again from its
# embedding alone. The reader then checks the drawn shape and colour against the original's.

# %%
x_test = subject.clip.encode_images(test.images)
drawn = decoder.sample(model, x_test, ddim_steps, guidance, seed=S.seed)
read_drawn = reader.read(factor_reader, drawn)
hits = {f: (read_drawn[f].to_numpy() == test.factors[f].astype(str).to_numpy()).astype(float)
        for f in read_drawn}
quality = pd.DataFrame([dict(zip(("accuracy", "low", "high"), stats.mean_ci([h], seed=S.seed)))
                        for h in hits.values()], index=list(hits))
display(quality.style.format(precision=3))

# %%
bar = {f: quality.loc[f] for f in ("shape", "colour")}
for f, r in bar.items():
    glue(f"q_{f}", f"{r.accuracy:.2f} [{r.low:.2f}, {r.high:.2f}]")
glue("q_met", "met" if all(r.accuracy >= 0.8 for r in bar.values()) else "missed")
glue("n_generate", n_generate)
pick = np.arange(6)
small = decoder.to_uint8(decoder.to_pixels(test.images[pick], resolution))
grid = np.concatenate([small, drawn[pick]])
plots.image_grid(grid, [test.captions[i] for i in pick] + ["drawn from its embedding"] * 6, ncols=6)
plt.show()

# %% [markdown]
# Top: held-out images at the decoder's resolution; bottom: drawn from their CLIP image embeddings.
# The reader finds the original's shape in {glue:text}`q_shape` of the drawings and its colour in
# {glue:text}`q_colour` (95% intervals over images): the chapter's quality bar, 0.8 on both, is
# {glue:text}`q_met`.

# %% [markdown]
# ## From captions
#
# To draw a caption, its embedding must first reach the image side of the gap. Two priors: the gap
# shift (the caption embedding moved by the difference of the two modalities' means) and a small MLP
# trained on matched pairs to predict the image embedding's direction.

# %%
_, fx, fy, data_id = experiment.feature_pairs(S, subject.clip, n_feature_pairs, progress=False)
mlp = prior.train_prior(fx, fy, steps=prior_steps, seed=S.seed)
y_test = subject.clip.encode_texts(test.captions)
routes = {"gap shift": prior.gap_shift(y_test, fx, fy), "MLP prior": mlp(y_test).detach()}
from_text = {}
for name, e in routes.items():
    got = reader.read(factor_reader, decoder.sample(model, e, ddim_steps, guidance, seed=S.seed))
    from_text[name] = reader.accuracy(got[["shape", "colour"]], test.factors)
from_text = pd.DataFrame(from_text).T
glue("text_mlp", ", ".join(f"{f} {v:.2f}" for f, v in from_text.loc["MLP prior"].items()))
glue("text_shift", ", ".join(f"{f} {v:.2f}" for f, v in from_text.loc["gap shift"].items()))
from_text.style.format(precision=3)

# %% [markdown]
# Every caption names the shape and the colour, so a drawing can be scored on both: through the MLP
# prior the reader finds {glue:text}`text_mlp`; through the gap shift alone,
# {glue:text}`text_shift`.

# %% [markdown]
# ## Editing the condition, class by class
#
# For each seed, the TopK autoencoder of {doc}`04_ground_truth` labels its latents twice (the
# paper's MDS and the probe partners). {glue:text}`n_edit` held-out image embeddings go through the
# autoencoder with nothing removed, with each class removed, and with {glue:text}`n_random_sets`
# random sets of each class's size removed; every version is drawn with the same sampling noise, and
# the reader says which factors of the drawing changed.

# %%
LABELLINGS = {"paper's MDS": "MDS, interval", "probe partner": "concept, probe partner"}
opts = comparison.Options(min_pairs=min_pairs, seed=S.seed)


def draw(e, s):
    """What the reader sees in the drawings of embeddings e (sampling noise of seed s)."""
    return reader.read(factor_reader, decoder.sample(model, e, ddim_steps, guidance, seed=s))


# %%
edit_x, rows = x_test[:n_edit], []
for s in seeds:
    cfg = EX.sae_configs(s)["TopK"]
    fs, sae_s = features.sae_features(fx, fy, cfg, subject.clip.identity, data_id, progress=False)
    zx, zy = features.encode_all(fs, fx), features.encode_all(fs, fy)
    plain = draw(editing.without_latents(sae_s, edit_x), s)
    for name, m in LABELLINGS.items():
        labels = comparison.attribute(m, zx, zy, opts=opts, x=fx.numpy(), y=fy.numpy()).labels
        for removed, kind, k, latents in editing.removal_sets(labels, n_random_sets, seed=s):
            got = draw(editing.without_latents(sae_s, edit_x, latents), s)
            rows.append({"seed": s, "labelling": name, "removed": removed, "kind": kind, "draw": k,
                         **reader.changes(plain, got)})
edits = pd.DataFrame(rows)
glue("n_edit", n_edit)
glue("n_random_sets", n_random_sets)

# %%
moved = editing.changes_against_random(edits, list(read_cfg.factors))
plots.edit_changes(moved)
plt.show()

# %% [markdown]
# Share of drawings in which each factor changed when each class was removed (points: mean over
# seeds with 95% intervals) and when random sets of the same size were removed (grey bars: 95%
# range).

# %%
def moved_beyond(name):
    d = moved[(moved.labelling == name) & moved["above random"]]
    parts = [f"{c}: {f} ({v:.2f})" for c, f, v in zip(d["class"], d.factor, d.change)]
    return "; ".join(parts) or "none"


for name in LABELLINGS:
    glue(f"moved_{name.split()[-1]}", moved_beyond(name))
display(moved.style.format(precision=2).hide(axis="index"))

# %% [markdown]
# Factors that a class moves more than any of its random sets (beyond their 95% range):
# {glue:text}`moved_MDS` under the paper's MDS classes; {glue:text}`moved_partner` under the probe
# partners' classes. If the classes meant what they claim, removing vision-dominant latents would
# move size and position (the vision-dominant factors the reader can see) and removing cross-modal
# latents would move shape and colour, each beyond random.

# %% [markdown]
# ## The real path: Stable unCLIP
#
# With `unclip_folder` pointing at a local Stable unCLIP pipeline and `clip_model`/`clip_pretrained`
# at the open_clip model whose image tower that pipeline uses (ViT-H-14 for Stable unCLIP 2.1), the
# same edits are drawn by the real generator: the autoencoder and the labellings come from the real
# CLIP's embeddings, and `image_embeds=` carries the edited embedding into the pipeline.

# %%
if unclip_folder:  # the probe partners' classes of the last seed, on four held-out images
    pipe = unclip.load_pipeline(unclip_folder, device=str(subject.clip.device()))
    original = x_test[:4]
    versions = {"nothing removed": []}
    versions |= {f"{c} removed": np.flatnonzero(labels == c) for c in ("ImgD", "TxtD", "CMD")
                 if (labels == c).any()}
    shown, names = [], []
    for name, latents in versions.items():
        e = unclip.rescale(editing.without_latents(sae_s, original, latents), original)
        shown += unclip.draw(pipe, e, unclip_steps, seed=S.seed)
        names += [name] * len(original)
    plots.image_grid(shown, names, ncols=len(original))
    plt.show()
else:
    print("No unclip_folder given: the real-path cells are skipped.")
