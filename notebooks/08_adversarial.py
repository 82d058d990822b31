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
# (adversarial)=
# # Cross-modal adversarial examples
#
# {cite:t}`yan2026beyond` use their modality classes to make adversarial images: perturb an image so
# that the features of one class move toward those of a target caption, and the image is read as the
# caption says. This chapter runs that attack on the world CLIP, one class at a time, with the whole
# embedding as the reference and random latent sets that carry as much as the class as the control,
# and asks which class is the cheapest route to another reading of the image, and whether the
# adversarial images fool a second CLIP.
#
# :::{admonition} What you will learn
# - how projected gradient descent perturbs an image, within a budget, until CLIP reads it as
#   another value, pulling either the whole embedding or one class of autoencoder latents toward a
#   target image;
# - how to judge an attack routed through a class against matched random latent sets;
# - how to test whether adversarial images transfer to a second, independently trained CLIP;
# - what a perturbation that flips a reading looks like.
# :::

# %% tags=["parameters"]
# Shared: experiment.ExperimentConfig, features.ExtractorsConfig, training.SweepConfig.PARAMS
profile = "ci"  # the profile that set these values (for the record)
n_seeds = 3  # seeds of the autoencoder, the targets and the random sets (seed, seed + 1, ...)
min_pairs = 5  # a latent firing on fewer pairs has no class
attack_factor = "colour"  # the factor whose zero-shot reading the attack flips
n_attack = 64  # held-out images attacked per seed
budgets = [2, 4, 8, 16]  # L-infinity budgets, in 1/255 of the pixel range
pgd_steps = 10  # PGD steps per attack
n_random_sets = 5  # matched random latent sets per class and seed (5: a 5% verdict is reachable)
transfer_temperature = 0.01  # fine-tuning temperature of the second CLIP (chapter 5's recipe)
second_model = ""  # the second CLIP's model ("": a sweep CLIP on the world, clip_model on a CSV)
second_pretrained = ""  # its pretrained tag or checkpoint file (with second_model, or on a CSV)
label_prompts = {}  # on a CSV: {label: [prompt, ...]} for every label, as zero-shot classes

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mdsgap import experiment, features, plots, world
from mdsgap.attribution import comparison
from mdsgap.clip import evaluation, models, training
from mdsgap.edit import adversarial, control, groups
from mdsgap.book import check_declared, glue

# %%
S = experiment.ExperimentConfig.from_params(globals())
EX = features.ExtractorsConfig.from_params(globals())
check_declared(globals(), dict(
    n_seeds=int, min_pairs=int, attack_factor=str, n_attack=int, budgets=list, pgd_steps=int,
    n_random_sets=int, transfer_temperature=float, second_model=str, second_pretrained=str,
    label_prompts=dict))
if not S.on_world and not (S.label_column and len(label_prompts) >= 2 and second_pretrained):
    raise ValueError("On a CSV, set label_column (the column of labels the attack flips), "
                     "label_prompts = {label: [prompt, ...]} for at least two of its labels, and "
                     "second_pretrained (and second_model) for the CLIP transfer is tested on.")

# %%
own = second_model or second_pretrained or not S.on_world  # a second CLIP named by parameters
if own and (second_model or S.clip_model, second_pretrained) == (S.clip_model, S.clip_pretrained):
    raise ValueError("The second CLIP is the subject itself: set second_model or second_pretrained "
                     "to another model.")
sns.set_theme(style="whitegrid", context="notebook")

# %% [markdown]
# ## The attacked model, its latents and the second CLIP
#
# The subject is the CLIP of {doc}`01_measuring_gap`, with the dictionary {doc}`04_ground_truth`
# chose ({glue:text}`chosen_tool`, one per seed, on the same pairs) and two labellings of its
# latents: the paper's MDS (interval rule) and the probe partners, the method that chapter chose.

# %%
LABELLINGS, tool = comparison.LABELLINGS, comparison.CHOSEN[0]
glue("chosen_tool", f"the {tool} SAE")
subject = experiment.subject(S)
pairs, x, y, data_id = experiment.feature_pairs(S, subject.clip, S.n_feature_pairs)
seeds = [S.seed + i for i in range(n_seeds)]
opts = comparison.MethodConfig(min_pairs=min_pairs, seed=S.seed)

# %%
saes, labels, carry = {}, {}, {}
for s in seeds:
    cfg = EX.config(tool, s)
    fs, saes[s] = features.sae_features(x, y, cfg, subject.clip.identity, data_id, progress=False)
    zx, zy = features.encode_all(fs, x), features.encode_all(fs, y)
    carry[s] = control.carried(zx, zy)
    labels[s] = {name: comparison.attribute(m, zx, zy, opts=opts, x=x.numpy(), y=y.numpy()).labels
                 for name, m in LABELLINGS.items()}

# %% [markdown]
# The second CLIP, for transfer, is {glue:text}`second_label`. On the world it is by default one of
# the sweep models of {doc}`05_why_the_gap`: another architecture, another seed, another recipe.

# %%
recipe = training.SweepConfig.from_params(globals())
if own:
    name = second_model or S.clip_model
    second = models.create_clip(name, second_pretrained, seed=S.seed + 1, device=S.device)
    glue("second_label", f"{name} ({second_pretrained or 'random init, seed ' + str(S.seed + 1)})")
else:
    second_cfg = recipe.finetune(S.seed + 1, transfer_temperature)
    second = training.cached_clip(second_cfg, device=S.device).clip
    glue("second_label", f"a sweep CLIP ({recipe.model}, seed {S.seed + 1})")

# %% [markdown]
# ## The images and their targets
#
# Each seed attacks the same {glue:text}`n_attack` {glue:text}`attacked_kind` images; every image
# gets a target {glue:text}`attack_factor` drawn among the values it does not have. The attack's
# goal is a *target image*: {glue:text}`target_kind`. Success is read zero-shot: the share of
# attacked images the CLIP now reads as the target value.

# %%
def attack_set():
    """The attacked images, the label names, each image's label, and whether they are held out
    (on a CSV: rows the autoencoder did not learn from, when the CSV has them)."""
    if S.on_world:
        test, _ = experiment.load_pairs(S, n_attack)
        truth = test.factors[attack_factor].cat.codes.to_numpy()
        return test.images, world.FACTOR_BY_NAME[attack_factor].values, truth, True
    rows, held = experiment.labelled_rows(S, n_attack, pairs.paths)
    images = adversarial.fitted_images(rows.load_images(range(len(rows))), subject.clip.image_size)
    truth = groups.group_codes(rows.columns[S.label_column], list(label_prompts))
    return images, list(label_prompts), truth, held


# %%
def label_classes(clip):
    """The clip's zero-shot class embeddings of the attacked values."""
    if S.on_world:
        return evaluation.class_embeddings(clip, attack_factor)
    return groups.prompt_classes(clip, label_prompts)[0]


# %%
images, values, truth, held = attack_set()
classes, classes_2 = label_classes(subject.clip), label_classes(second)
glue("attacked_kind", "held-out" if held else "in-sample (the CSV has no rows beyond the pairs "
     "the autoencoder learns from)")
clean = adversarial.predict(subject.clip, adversarial.pixels(images), classes)
clean_2 = adversarial.predict(second, adversarial.pixels(images), classes_2)
attack_factor = attack_factor if S.on_world else S.label_column
glue("target_kind", "the same picture drawn again with the target value (the world can redraw any "
     "pair with one factor changed)" if S.on_world else "another of the attacked images whose "
     "label is the target (a real picture cannot be redrawn)")
glue("clean", float((clean == truth).mean()))
glue("clean_2", float((clean_2 == truth).mean()))
glue("n_attack", len(images))
glue("attack_factor", attack_factor)

# %% [markdown]
# Unattacked, the subject reads the {glue:text}`attack_factor` of these images right
# {glue:text}`clean:.2f` of the time and the second CLIP {glue:text}`clean_2:.2f`.

# %% [markdown]
# ## The attacks
#
# Projected gradient descent, {glue:text}`pgd_steps` signed steps inside an $L_\infty$ ball of each
# budget {glue:text}`budget_list` (in 1/255 of the pixel range). The objective is the squared
# distance between the image's values of one latent set and the target image's, where a latent's
# value is its ReLU pre-activation, so every route asks the same of its latents whatever side of the
# gap they fire on; the reference attack pulls the whole embedding toward the target image's by
# cosine. Each class's control is {glue:text}`n_random_sets` random sets drawn outside the class and
# matched on what they carry on images (`mdsgap.edit.control`).

# %%
def target_images(goal, s):
    """Each attacked image's target: redrawn with its goal value, or another image labelled so."""
    if S.on_world:
        return world.redraw(world.WorldConfig(), n_attack, S.seed, "test",
                            **{attack_factor: np.asarray(values)[goal]})
    return images[adversarial.target_rows(truth, goal, seed=s)]


def seed_attacks(s):
    """Seed s's target values and its attacks, each toward the target images of those values."""
    goal = adversarial.targets(truth, len(values), seed=s)
    target = subject.clip.encode_images(target_images(goal, s))
    attacks, overlaps = adversarial.objectives(saes[s], labels[s], target, carry[s], n_random_sets,
                                               seed=s)
    return goal, attacks, {(s, *k): o for k, o in overlaps.items()}


# %%
SHOWN = ("partner", "CMD", "class")  # the attack whose images the chapter shows, if it exists
runs, shown, overlaps = [], None, {}
for s in seeds:
    goal, attacks, overlap = seed_attacks(s)
    overlaps.update(overlap)
    if s == S.seed:
        keep = SHOWN if SHOWN in attacks else ("-", "whole embedding", "reference")
        shown_name = f"{keep[1]} ({comparison.label(keep[0])})" if keep[0] != "-" else keep[1]
    table, adv = adversarial.attack_table(subject.clip, images, goal, classes, attacks,
                                          budgets, pgd_steps, (second, classes_2),
                                          keep if s == S.seed else None)
    runs.append(table.assign(seed=s))
    shown = (adv, goal) if adv is not None else shown
attacks_done = pd.concat(runs, ignore_index=True)

# %%
glue("budget_list", ", ".join(str(b) for b in budgets))
glue("n_random_sets", n_random_sets)
glue("p_floor", 0.5 / (n_random_sets + 1))
glue("pgd_steps", pgd_steps)
glue("shown_name", shown_name)
success = adversarial.summarise(attacks_done, "success")
verdicts = adversarial.against_random(attacks_done, overlaps, "success")
undecided = verdicts[verdicts.verdict == "undecidable"]
glue("n_undecidable", len(undecided))
named = zip(undecided.labelling.map(comparison.label), undecided["class"], undecided.readout)
glue("undecidable", "; ".join(f"{c} ({n}) at {b}/255" for n, c, b in named) or "none")
decided = verdicts.verdict.isin(["above", "below", "within"])
glue("n_verdicts", int(decided.sum()))
glue("n_beyond", int(verdicts.verdict.isin(["above", "below"]).sum()))
glue("n_by_chance", 0.05 * int(decided.sum()))

# %% mystnb={"figure": {"caption": "Share of attacked images the subject CLIP reads as their target, against the budget: each class of each labelling (solid), its matched random latent sets (dotted) and the whole-embedding attack (black), with 95% intervals over seeds.", "name": "fig-adversarial-success"}}
plots.attack_success(success)
plt.show()

# %% [markdown]
# {numref}`fig-adversarial-success` gives the share of attacked images the subject CLIP reads as
# their target, against the budget: each class of each labelling (solid), its matched random latent
# sets (dotted) and the whole-embedding attack (black), with 95% intervals over seeds.

# %%
for name in LABELLINGS:
    c = adversarial.cheapest(success, verdicts, name)
    glue(f"cheap_{name}", c["class"])
    glue(f"cheap_{name}_success", c["value"])
    glue(f"cheap_{name}_random", c["random"])
    glue(f"cheap_{name}_beats", c["budgets above random"])
glue("reference_success", c["reference"])

# %%
ref = success[success.kind == "reference"].set_index("budget").value
half = ref[ref > 0.5]
glue("ref_half", f"{half.index.min()}/255" if len(half) else "none of the budgets tried")
best_class = success[success.kind == "class"].groupby("attack").value.mean().max()
glue("route_ratio", float(c["reference"] / max(best_class, 1e-9)))
glue("class_as_cheap", "yes" if c["reference"] <= best_class else "no")

# %% [markdown]
# Averaged over the budgets, the whole-embedding attack reaches its target on a share
# {glue:text}`reference_success:.2f` of the images. Among the paper's MDS classes the cheapest route
# is {glue:text}`cheap_mds` ({glue:text}`cheap_mds_success:.2f`, against
# {glue:text}`cheap_mds_random:.2f` for its matched random sets; above them, by the combined
# permutation test at the 5% level, at a share {glue:text}`cheap_mds_beats:.2f` of the budgets).
# Among the probe partners' classes it is {glue:text}`cheap_partner`
# ({glue:text}`cheap_partner_success:.2f` against {glue:text}`cheap_partner_random:.2f`; above
# random at a share {glue:text}`cheap_partner_beats:.2f` of the budgets). With
# {glue:text}`n_random_sets` random sets per class and seed, one seed's p-value cannot go below
# {glue:text}`p_floor:.3f`, so a class must beat all its random sets in nearly every seed to pass
# (verdicts that no result could have decided: {glue:text}`n_undecidable`, namely
# {glue:text}`undecidable`). Of the {glue:text}`n_verdicts` decided verdicts (class, labelling and
# budget), {glue:text}`n_beyond` differ from random at the 5% level; about
# {glue:text}`n_by_chance:.1f` would by chance alone.

# %% [markdown]
# ## Do the adversarial images transfer?
#
# The same images, read by the second CLIP with its own prompt ensembles:

# %% mystnb={"figure": {"caption": "Share of adversarial images the second CLIP reads as their target, for the same attacks, budgets and seeds as the figure before.", "name": "fig-adversarial-transfer"}}
transfer = adversarial.summarise(attacks_done, "transfer")
plots.attack_success(transfer, ylabel="transfer")
plt.show()

# %%
glue("transfer_max", float(transfer.value.max()))
glue("transfer_chance", 1 / len(values))
glue("transfer_vs", "above" if transfer.value.max() > 1 / len(values) else "not above")

# %% [markdown]
# {numref}`fig-adversarial-transfer` gives the share of adversarial images the second CLIP reads as
# their target, for the same attacks. The highest transfer rate of any attack at any budget is
# {glue:text}`transfer_max:.2f` ({glue:text}`transfer_vs` chance); a reader that guessed uniformly
# among the values would hit the target {glue:text}`transfer_chance:.2f` of the time, and one that
# still reads the true value, never.

# %% [markdown]
# ## What the attack changes
#
# {numref}`fig-adversarial-images` shows clean images (top), the perturbation magnified to the full
# range (middle) and the adversarial images (bottom), for the attack through
# {glue:text}`shown_name` at the largest budget, first seed; captions give the true value, the
# target, and what the subject reads:

# %% mystnb={"figure": {"caption": "Clean images (top), the perturbation magnified to the full range (middle) and the adversarial images (bottom), at the largest budget for the first seed; captions give the true value, the target and what the subject reads.", "name": "fig-adversarial-images"}}
adv, goal = shown
x0 = adversarial.pixels(images[:6])
delta = (adv[:6] - x0) / (2 * max(budgets) / 255) + 0.5
read = adversarial.predict(subject.clip, adv[:6], classes)
rows = [x0, delta.clamp(0, 1), adv[:6]]
grid = np.concatenate([(r.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8) for r in rows])
caps = [f"{values[t]} → {values[g]}" for t, g in zip(truth[:6], goal[:6])] + [""] * 6
caps += [f"read: {values[p]}" for p in read]
plots.image_grid(grid, caps, ncols=6, wrap=24)
plt.show()

# %% [markdown]
# ## What this says
#
# An image can be pushed to read as another value: the whole-embedding attack toward the target
# image turns more than half of the images at a budget of {glue:text}`ref_half`. Averaged over the
# budgets it succeeds {glue:text}`route_ratio:.1f` times as often as the best attack routed through
# one class. Is any class route, under either labelling, at least as cheap as the whole
# embedding? **{glue:text}`class_as_cheap`**.
# A class that did better than random sets that carry as much
# would be the evidence that the class, not its mass, carries the route. Two choices shape these
# numbers and are this book's, not the paper's (whose protocol is not public): a latent's value in
# the objective is its pre-activation, so latents outside an image's top k can still be moved, and
# the target is the same picture drawn with the target value, so that every class is asked the same
# thing. A real CLIP is one parameter away (`clip_model`, `clip_pretrained`); the attack, its
# controls and the transfer test are unchanged.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-adversarial-1
# The attacks above used budgets of {glue:text}`budget_list` (in 1/255 of the pixel range). On the
# first eight attacked images, with the first seed's targets, run the whole-embedding attack at the
# largest budget and at twice it, and compare how many images the subject reads as their target.
# ```
#
# ```{solution-start} ex-adversarial-1
# :class: dropdown
# ```

# %%
few = min(8, len(images))
goal_few = adversarial.targets(truth, len(values), seed=S.seed)
redrawn = target_images(goal_few, S.seed)[:few]
goal_few = goal_few[:few]
loss = adversarial.embedding_objective(subject.clip.encode_images(redrawn))
for b in (max(budgets), 2 * max(budgets)):
    adv_b = adversarial.pgd(subject.clip, adversarial.pixels(images[:few]), loss, eps=b / 255,
                            steps=pgd_steps)
    hit = adversarial.predict(subject.clip, adv_b, classes) == goal_few
    print(f"budget {b}/255: {hit.sum()} of {few} images read as their target")

# %% [markdown]
# A larger ball can only contain more of the images that fool the model, but PGD takes the same
# number of steps, each larger, so success need not rise in step with the budget; the gap between
# the two lines is what the extra budget buys on these images.
#
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-adversarial-2
# Does transfer follow success? Over every attack, budget and seed in `attacks_done`, compute the
# rank correlation between the share of images that fool the subject and the share that fool the
# second CLIP, then tabulate both by kind of attack and budget.
# ```
#
# ```{solution-start} ex-adversarial-2
# :class: dropdown
# ```

# %%
rho_transfer = attacks_done.success.corr(attacks_done.transfer, method="spearman")
print(f"rank correlation of success and transfer over {len(attacks_done)} attacks: "
      f"{rho_transfer:.2f}")
by_kind = attacks_done.groupby(["kind", "budget"])[["success", "transfer"]].mean()
by_kind.style.format(precision=3)

# %% [markdown]
# If transfer stays near chance while success climbs with the budget, the perturbations exploit the
# subject's own weights rather than anything a second model also reads; transfer that rises with
# success would point to features the two CLIPs share.
#
# ```{solution-end}
# ```
