"""The gap inside an adapter VLM: the overview's four claims as measurements on `vlm.AdapterVLM`.

- Cones (Shukor et al.): projected visual tokens and the language model's text token embeddings each
  sit in a narrow cone (`gap.cone`), the two cones nearly orthogonal (`angle` between their means).
- Logit lens (Neo et al.): visual tokens decoded straight through the LM head name nothing of the
  image; `lens_hits` asks, layer by layer, how often the decoded word names one of the image's values.
- Layer similarity (Venhoff et al.): image-text similarity of matched pairs rises with depth.
- Text dominance (Wang et al.; Nikankin et al.): when the prompt's text contradicts the image, which
  one the answer follows (`follow_rates`).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mdsgap import gap, stats, vlm, world


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between the mean directions of two sets of vectors (rows)."""
    cos = F.cosine_similarity(a.float().mean(0), b.float().mean(0), dim=0).clamp(-1, 1)
    return float(torch.rad2deg(torch.arccos(cos)))


def cross_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine between every row of a and every row of b (O((n + m) d) via the mean directions)."""
    return float(gap.normalize(a).mean(0) @ gap.normalize(b).mean(0))


def geometry(visual: torch.Tensor, text: torch.Tensor) -> dict[str, float]:
    """Cone of each set, the angle between their means and their mean cross cosine (rows are tokens)."""
    return {"visual cone": gap.cone(visual), "text cone": gap.cone(text), "angle": angle(visual, text),
            "cross cosine": cross_cosine(visual, text)}


@torch.no_grad()
def tokens(model: vlm.AdapterVLM, patches: torch.Tensor, ids: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The projected visual tokens of `patches` (every position of every image, as rows) and the text
    token embeddings of `ids` as the language model receives them: one row per word occurrence, the
    specials (padding, BOS, EOS) left out."""
    return model.visual_tokens(patches).flatten(0, 1), model.lm.embed(ids[words_mask(ids)])


def words_mask(ids: torch.Tensor) -> torch.Tensor:
    """True at word tokens (not padding, BOS or EOS, which are alike across captions)."""
    return ids >= len(vlm.SPECIALS)


def token_geometry(model: vlm.AdapterVLM, patches: torch.Tensor, ids: torch.Tensor) -> dict[str, float]:
    """`geometry` of the visual tokens and the text token embeddings (`tokens`)."""
    return geometry(*tokens(model, patches, ids))


def value_words(factors: pd.DataFrame, names=world.ZERO_SHOT):
    """Per row, the set of words that name one of the image's values of the factors `names` (default: those
    every image shows and some captions name)."""
    sets = [set() for _ in range(len(factors))]
    for name in names:
        for i, v in enumerate(factors[name].astype(str)):
            sets[i].update(vlm.words(v))
    return sets


@torch.no_grad()
def lens_words(model: vlm.AdapterVLM, vocab: vlm.Vocab, patches: torch.Tensor) -> torch.Tensor:
    """(layers + 1, n, P) word ids: each visual token decoded through the final norm and the tied head
    at every depth (the logit lens; specials excluded). The visual tokens come first and attention is
    causal, so no text is needed."""
    bos = torch.full((len(patches), 1), vlm.BOS)
    _, states = model(patches, bos)
    out = []
    for h in states:
        logits = model.lm.head(h[:, :patches.shape[1]])
        logits[..., :len(vlm.SPECIALS)] = float("-inf")
        out.append(logits.argmax(-1))
    return torch.stack(out)


def lens_hits(decoded: torch.Tensor, vocab: vlm.Vocab, factors: pd.DataFrame, seed: int = 0
              ) -> pd.DataFrame:
    """Per layer: the share of visual tokens whose decoded word names a value of their own image, the
    same share against a shuffled image (the chance control) and the share naming any value at all."""
    own = value_words(factors)
    perm = np.random.default_rng(seed).permutation(len(own))
    every = set().union(*own)
    rows = []
    for layer, ids in enumerate(decoded):
        words = [[vocab.tokens[t] for t in row] for row in ids.tolist()]
        hit = np.mean([[w in own[i] for w in ws] for i, ws in enumerate(words)])
        shuffled = np.mean([[w in own[perm[i]] for w in ws] for i, ws in enumerate(words)])
        named = np.mean([[w in every for w in ws] for ws in words])
        rows.append({"layer": layer, "own image": hit, "shuffled image": shuffled, "any value": named})
    return pd.DataFrame(rows)


def pooled(states, mask: torch.Tensor) -> torch.Tensor:
    """(layers + 1, n, d): each layer's hidden states averaged over the positions where mask is True."""
    m = mask.float().unsqueeze(-1)
    return torch.stack([(h * m).sum(1) / m.sum(1) for h in states])


def similarity_by_layer(visual: torch.Tensor, text: torch.Tensor, seed: int = 0, centre: bool = False
                        ) -> pd.DataFrame:
    """Per layer, from (layers + 1, n, d) pooled states of n images and their n captions: the mean cosine
    of matched pairs, of pairs shuffled by a derangement (the control), and `margin`, their difference.
    `centre` first subtracts each side's mean state per layer, so a direction every input shares (the
    cone) cannot make pairs look similar."""
    if centre:
        visual, text = visual - visual.mean(1, keepdim=True), text - text.mean(1, keepdim=True)
    n = visual.shape[1]
    if n < 2:
        raise ValueError("layer similarity needs at least two pairs (the shuffled control pairs them).")
    shift = torch.randint(1, n, (1,), generator=torch.Generator().manual_seed(seed))
    perm = (torch.arange(n) + shift) % n
    rows = []
    for layer, (v, t) in enumerate(zip(visual, text)):
        matched = F.cosine_similarity(v, t, dim=-1).mean().item()
        unmatched = F.cosine_similarity(v, t[perm], dim=-1).mean().item()
        rows.append({"layer": layer, "matched": matched, "unmatched": unmatched,
                     "margin": matched - unmatched})
    return pd.DataFrame(rows)


@torch.no_grad()
def layer_similarity(model: vlm.AdapterVLM, patches: torch.Tensor, ids: torch.Tensor, seed: int = 0,
                     centre: bool = False) -> pd.DataFrame:
    """`similarity_by_layer` of the adapter VLM: an image's visual-token states (the image alone) against
    its caption's text states (the caption alone), each averaged over its positions (the caption's
    words only: BOS, the same for every caption, and EOS left out)."""
    bos = torch.full((len(patches), 1), vlm.BOS)
    _, vis_states = model(patches, bos)
    vis_mask = torch.zeros(vis_states[0].shape[:2], dtype=torch.bool)
    vis_mask[:, :patches.shape[1]] = True
    _, txt_states = model(None, ids)
    v, t = pooled(vis_states, vis_mask), pooled(txt_states, words_mask(ids))
    return similarity_by_layer(v, t, seed, centre)


def conflict_prompts(factors: pd.DataFrame, factor: str, seed: int = 0) -> tuple[list[str], list[str]]:
    """Per row: the image's own caption with its `factor` value swapped for another value, then the
    question about that factor; and the value the text asserts. The factor must always be named."""
    values = world.FACTOR_BY_NAME[factor].values
    if not factors[f"mentioned_{factor}"].all():
        raise ValueError(f"captions do not always name the {factor}: choose a factor every caption names "
                         f"that the model is asked about ({[f for f in vlm.QUESTIONS if f in world.ALWAYS_NAMED]}).")
    rng = np.random.default_rng(seed)
    prompts, asserted = [], []
    for caption, true in zip(factors.caption, factors[factor].astype(str)):
        other = [v for v in values if v != true][rng.integers(len(values) - 1)]
        text = re.sub(rf"\b{re.escape(true)}\b", other, caption, count=1)
        prompts.append(f"{text} . {vlm.QUESTIONS[factor]}")
        asserted.append(other)
    return prompts, asserted


def follow_rates(answers: list[str], image: list[str], text: list[str]) -> dict[str, float]:
    """Shares of answers that give the image's value, the text's, or something else."""
    a, i, t = (np.asarray(v, dtype=object) for v in (answers, image, text))
    follows_image, follows_text = (a == i).mean(), (a == t).mean()
    return {"image": float(follows_image), "text": float(follows_text),
            "other": float(1 - follows_image - follows_text)}


def accuracy(model: vlm.AdapterVLM, vocab: vlm.Vocab, patches: torch.Tensor | None, factors: pd.DataFrame,
             names=tuple(vlm.QUESTIONS), **intervention) -> dict[str, float]:
    """Share of right one-word answers to each factor's question; `patches` None asks the language model
    alone (the control: what the words of the question give away)."""
    out = {}
    for name in names:
        got = vlm.answers(model, vocab, patches, [vlm.QUESTIONS[name]] * len(factors), **intervention)
        out[name] = float(np.mean(np.asarray(got, dtype=object) == factors[name].astype(str).to_numpy()))
    return out


def dominance(model: vlm.AdapterVLM, vocab: vlm.Vocab, patches: torch.Tensor, factors: pd.DataFrame,
              names=("colour", "shape"), interventions: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """Per factor and intervention (name -> keyword arguments of `AdapterVLM.forward`): the follow rates
    under conflicting captions, and the accuracy without conflict under the same intervention (its cost)."""
    rows = []
    for name in names:
        prompts, asserted = conflict_prompts(factors, name, seed)
        truth = list(factors[name].astype(str))
        for label, kw in (interventions or {"none": {}}).items():
            rates = follow_rates(vlm.answers(model, vocab, patches, prompts, **kw), truth, asserted)
            plain = accuracy(model, vocab, patches, factors, (name,), **kw)[name]
            rows.append({"factor": name, "intervention": label, **rates, "accuracy": plain})
    return pd.DataFrame(rows)


def depth_verdict(raw: pd.DataFrame, centred: pd.DataFrame) -> dict:
    """Claim 3 from `stats.intervals` tables of `layer_similarity` by layer (raw and centred): whether the raw
    matched cosine rises from the input to the last layer (intervals apart), by how much more than the
    unmatched control, the centred margin at the input, and the layer where it peaks, with whether its
    interval excludes 0 and lies above the input's."""
    layers = list(dict.fromkeys(raw.layer))
    r, c = raw.set_index(["quantity", "layer"]), centred.set_index(["quantity", "layer"])
    matched, unmatched, margin = r.loc["matched"], r.loc["unmatched"], c.loc["margin"]
    first, last = matched.loc[layers[0]], matched.loc[layers[-1]]
    peak_layer = margin.value.idxmax()
    peak, start = margin.loc[peak_layer], margin.iloc[0]
    return {"rises": bool(last.low > first.high),
            "input_margin": float(start.value), "input_low": float(start.low), "input_high": float(start.high),
            "peak_above_input": stats.position(peak, start) == "above",
            "rise": float(last.value - first.value),
            "rise_unmatched": float(unmatched.loc[layers[-1]].value - unmatched.loc[layers[0]].value),
            "peak_layer": int(peak_layer), "peak_margin": float(peak.value),
            "peak_low": float(peak.low), "peak_high": float(peak.high),
            "peak_above_zero": bool(peak.low > 0), "n_layers": int(raw.layer.max())}


def dominance_verdicts(runs: pd.DataFrame, baseline: str = "none") -> dict[str, dict]:
    """Claim 4 per factor, from per-seed `dominance` tables (column `seed`): what the answers follow
    without intervention ('the text' or 'the image' when, within seeds, one share is above the other
    with an interval clear of zero, else 'neither clearly'), and the intervention that sends the most
    answers to the image, with its cost and whether it beats no intervention within seeds."""
    values = ["image", "text", "other", "accuracy"]
    follow = stats.intervals(runs, ["factor", "intervention"], values).set_index(
        ["factor", "quantity", "intervention"])
    out = {}
    for factor in dict.fromkeys(runs.factor):
        d = follow.loc[factor]
        base, best = d.xs(baseline, level="intervention"), d.loc["image"].value.idxmax()
        r = runs[runs.factor == factor]
        side = stats.paired(r[r.intervention == baseline], ["factor"], "text", "image").relation.iloc[0]
        wide = r.pivot_table(index="seed", columns="intervention", values="image").reset_index()
        wide["factor"] = factor
        helps = best != baseline and stats.paired(wide, ["factor"], best, baseline).relation.iloc[0] == "above"
        out[factor] = {
            "text": float(base.loc["text"].value), "text_low": float(base.loc["text"].low),
            "text_high": float(base.loc["text"].high), "image": float(base.loc["image"].value),
            "image_low": float(base.loc["image"].low), "image_high": float(base.loc["image"].high),
            "follows": {"above": "the text", "below": "the image"}.get(side, "neither clearly"),
            "accuracy": float(base.loc["accuracy"].value), "best": best,
            "best_image": float(d.loc[("image", best)].value), "best_text": float(d.loc[("text", best)].value),
            "best_accuracy": float(d.loc[("accuracy", best)].value), "best_helps": bool(helps)}
    return out
