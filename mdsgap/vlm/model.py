"""A small adapter VLM on the world: LLaVA's recipe at toy scale, to measure how the gap looks there.

A frozen CLIP image tower gives patch tokens; a projector (linear as in LLaVA 1.0, a 2-layer MLP as in
LLaVA 1.5) maps them into a small causal language model's token space, where they precede the text. The
language model is word-level over the world's small vocabulary, so decoding a visual token straight to the
vocabulary (the overview's "they mean nothing" claim) can be checked word by word.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn

from mdsgap import cache, world
from mdsgap.config import check_fields

SPECIALS = ("<pad>", "<bos>", "<eos>")
PAD, BOS, EOS = range(3)
QUESTIONS = {"colour": "what colour is the shape ?", "shape": "what shape is it ?",
             "size": "what size is the shape ?"}
"""Questions the chapter asks about an image, by the factor whose value answers them."""


def words(text: str) -> list[str]:
    """Lower-case words, with '?', ',' and '.' as words of their own."""
    return re.findall(r"[a-z]+|[?,.]", text.lower())


class Vocab:
    """Word-level vocabulary: the specials, then the words of world captions, questions and answers."""

    def __init__(self, tokens: list[str]):
        self.tokens = list(SPECIALS) + sorted(set(tokens) - set(SPECIALS))
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def from_world(cls, cfg: world.WorldConfig | None = None, n: int = 4000, seed: int = 0) -> "Vocab":
        pairs = world.generate(cfg or world.WorldConfig(), n, seed=seed, split="vocab")
        found = {w for c in pairs.captions for w in words(c)}
        found |= {w for q in QUESTIONS.values() for w in words(q)} | {".", ","}
        found |= {w for f in world.FACTORS for v in f.values for w in words(str(v))}
        return cls(sorted(found))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, bos: bool = True, eos: bool = True) -> list[int]:
        unknown = [w for w in words(text) if w not in self.index]
        if unknown:
            raise ValueError(f"words not in the vocabulary: {unknown}; build it with Vocab.from_world on the "
                             "same world (or add them).")
        ids = [self.index[w] for w in words(text)]
        return [BOS] * bos + ids + [EOS] * eos

    def decode(self, ids) -> str:
        return " ".join(self.tokens[i] for i in ids if i not in (PAD, BOS, EOS))

    def batch(self, texts: list[str], length: int, bos: bool = True, eos: bool = True) -> torch.Tensor:
        """(n, length) ids, right-padded with PAD; a text longer than `length` is an error, not a cut."""
        out = torch.full((len(texts), length), PAD, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = self.encode(t, bos, eos)
            if len(ids) > length:
                raise ValueError(f"{t!r} is {len(ids)} tokens, longer than {length}: raise max_text.")
            out[i, :len(ids)] = torch.tensor(ids)
        return out


@dataclass(frozen=True)
class VLMConfig:
    """The adapter VLM's shape (its training recipe lives with the training functions)."""

    projector: str = "mlp2"
    """"linear" (LLaVA 1.0) or "mlp2" (LLaVA 1.5: Linear, GELU, Linear)."""
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    max_len: int = 56
    """Visual tokens plus text tokens the positional table covers."""
    seed: int = 0

    def __post_init__(self):
        check_fields(self)
        if self.projector not in ("linear", "mlp2"):
            raise ValueError(f"projector must be 'linear' or 'mlp2', got {self.projector!r}.")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}.")


def projector(kind: str, d_in: int, d_out: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))


class TinyLM(nn.Module):
    """A causal transformer over word tokens, its output head tied to the token embeddings."""

    def __init__(self, vocab_size: int, cfg: VLMConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(cfg.max_len, cfg.d_model))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, dropout=0.0,
                                       batch_first=True, norm_first=True) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, h: torch.Tensor, add: tuple[int, torch.Tensor] | None = None,
                attn_bias: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T, V) for input embeddings h (B, T, d), and the hidden states: the input (with
        positions) and the output of every layer. `add` = (k, a) adds a (B, T, d) to the residual stream
        after layer k (0: before the first layer), the hook of the re-injection intervention;
        `attn_bias` (T, T) is added to every layer's attention logits (on top of the causal mask)."""
        if h.shape[1] > len(self.pos):
            raise ValueError(f"sequence of {h.shape[1]} tokens is longer than max_len {len(self.pos)}.")
        if add is not None and not 0 <= add[0] <= len(self.layers):
            raise ValueError(f"cannot add after layer {add[0]}: the model has {len(self.layers)} layers.")
        h = h + self.pos[:h.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(h.shape[1], device=h.device)
        causal = attn_bias is None
        mask = mask if causal else mask + attn_bias
        h = h + add[1] if add is not None and add[0] == 0 else h
        states = [h]
        # torch's inference fast path misreads a float mask that is not purely causal (checked in tests)
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(fast and causal)
        try:
            for k, layer in enumerate(self.layers, start=1):
                h = layer(h, src_mask=mask, is_causal=causal)
                h = h + add[1] if add is not None and add[0] == k else h
                states.append(h)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast)
        return self.head(h), states

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden states: the final norm, then the tied embedding matrix."""
        return self.norm(h) @ self.embed.weight.T


class AdapterVLM(nn.Module):
    """Projected patch tokens, then text tokens, through `TinyLM`; the image tower stays outside (frozen)."""

    def __init__(self, vocab_size: int, d_visual: int, cfg: VLMConfig):
        super().__init__()
        self.cfg = cfg
        self.project = projector(cfg.projector, d_visual, cfg.d_model)
        self.lm = TinyLM(vocab_size, cfg)

    def forward(self, patches: torch.Tensor | None, ids: torch.Tensor, visual_scale: float = 1.0,
                reinject: int | None = None, attend_image: float = 1.0):
        """Logits at the text positions (B, T, V) and every layer's hidden states over the whole sequence
        (visual tokens first). `patches` None runs the language model alone.

        Three interventions against text dominance: `visual_scale` multiplies the projected visual
        tokens; `reinject` = k adds them again to the residual stream at their positions after layer k;
        `attend_image` multiplies every text token's attention weights on the visual tokens before
        renormalising (a log-bias on their logits, as in Liu et al. 2024's "pay attention to image")."""
        text = self.lm.embed(ids)
        if patches is None:
            return self.lm(text)
        vis = visual_scale * self.project(patches)
        add, bias, n_vis = None, None, vis.shape[1]
        if reinject is not None:
            add = (reinject, torch.cat([vis, torch.zeros_like(text)], 1))
        if attend_image != 1.0:
            if attend_image <= 0:
                raise ValueError(f"attend_image must be positive, got {attend_image}.")
            bias = torch.zeros(n_vis + text.shape[1], n_vis + text.shape[1], device=text.device)
            bias[n_vis:, :n_vis] = math.log(attend_image)
        logits, states = self.lm(torch.cat([vis, text], 1), add, bias)
        return logits[:, vis.shape[1]:], states

    def visual_tokens(self, patches: torch.Tensor) -> torch.Tensor:
        """Projected visual tokens (B, P, d_model): what the language model receives for an image."""
        return self.project(patches)


@torch.no_grad()
def patch_tokens(clip, images, batch_size: int = 256) -> torch.Tensor:
    """(n, P, width) patch tokens of the frozen CLIP image tower (open_clip's `output_tokens`), for uint8
    world images (n, H, W, 3)."""
    visual = clip.model.visual
    if not hasattr(visual, "output_tokens"):
        raise ValueError(f"{type(visual).__name__} gives no patch tokens: the adapter VLM needs a ViT tower.")
    out, old = [], visual.output_tokens
    visual.output_tokens = True
    clip.model.eval()
    try:
        for i in range(0, len(images), batch_size):
            x = clip.image_tensor(images[i:i + batch_size]).to(clip.device())
            out.append(visual(x)[1].float().cpu())
    finally:
        visual.output_tokens = old
    return torch.cat(out)


@dataclass(frozen=True)
class RecipeConfig:
    """LLaVA's three phases at toy scale: the language model on captions alone, then the projector alone on
    captioning (alignment), then projector and language model on captions and questions (tuning)."""

    lm_steps: int = 600
    align_steps: int = 300
    tune_steps: int = 600
    batch_size: int = 128
    lr: float = 3e-3
    context_share: float = 0.5
    """Share of tuning questions preceded by the image's own caption (so text and image agree in training,
    and the chapter can ask what the model follows when they disagree)."""
    max_text: int = 40
    seed: int = 0

    def __post_init__(self):
        check_fields(self)


def question_texts(factors, captions: list[str], rng: torch.Generator, share: float) -> list[str]:
    """One question per pair about a random factor of QUESTIONS, answered by its value, preceded by the pair's
    caption with probability `share`."""
    names = list(QUESTIONS)
    pick = torch.randint(0, len(names), (len(captions),), generator=rng).tolist()
    ctx = (torch.rand(len(captions), generator=rng) < share).tolist()
    out = []
    for i, (k, c) in enumerate(zip(pick, ctx)):
        f = names[k]
        prefix = f"{captions[i]} . " if c else ""
        out.append(f"{prefix}{QUESTIONS[f]} {factors[f].iloc[i]}")
    return out


def _loss(model: AdapterVLM, patches, ids: torch.Tensor, answer_only: torch.Tensor | None = None):
    """Next-token cross-entropy over the text (PAD ignored); with `answer_only`, only where it is True."""
    logits, _ = model(patches, ids[:, :-1])
    target = ids[:, 1:].clone()
    if answer_only is not None:
        target[~answer_only[:, 1:]] = PAD
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                       ignore_index=PAD)


def answer_mask(ids: torch.Tensor, vocab: Vocab) -> torch.Tensor:
    """True at the tokens after the question mark (the answer and its end), where tuning puts its loss."""
    after = (ids == vocab.index["?"]).long().cumsum(1) > 0
    return after & (ids != vocab.index["?"]) & (ids != PAD)


def train(model: AdapterVLM, vocab: Vocab, patches: torch.Tensor, captions: list[str], factors,
          recipe: RecipeConfig, progress: bool = True):
    """The three phases on (patch tokens, captions, factor table); returns the model and a loss curve.
    A phase of zero steps is skipped."""
    from tqdm.auto import tqdm

    torch.manual_seed(recipe.seed)
    g = torch.Generator().manual_seed(recipe.seed)
    cap_ids = vocab.batch(captions, recipe.max_text)
    rows = []
    phases = (("language model", recipe.lm_steps, model.lm.parameters(), False),
              ("alignment", recipe.align_steps, model.project.parameters(), True),
              ("tuning", recipe.tune_steps, model.parameters(), True))
    for phase, steps, params, visual in phases:
        if steps == 0:
            continue
        opt = torch.optim.AdamW(list(params), lr=recipe.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=max(steps, 1))
        for step in tqdm(range(steps), desc=f"VLM: {phase}", disable=not progress, mininterval=2):
            idx = torch.randint(0, len(captions), (recipe.batch_size,), generator=g)
            vis = patches[idx] if visual else None
            if phase == "tuning":
                texts = question_texts(factors.iloc[idx.numpy()].reset_index(drop=True),
                                       [captions[i] for i in idx.tolist()], g, recipe.context_share)
                ids = vocab.batch(texts, recipe.max_text)
                loss = _loss(model, vis, ids, answer_mask(ids, vocab))
            else:
                loss = _loss(model, vis, cap_ids[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 0 or step == steps - 1:
                rows.append({"phase": phase, "step": step, "loss": loss.item()})
    return model.eval(), pd.DataFrame(rows)


@torch.no_grad()
def answers(model: AdapterVLM, vocab: Vocab, patches: torch.Tensor | None, prompts: list[str],
            **intervention) -> list[str]:
    """The model's one-word answer (greedy next token after the prompt) for each (image, prompt);
    `intervention` goes to `AdapterVLM.forward` (visual_scale, reinject)."""
    ids = [vocab.encode(p, bos=True, eos=False) for p in prompts]
    out = [""] * len(ids)
    for length in sorted(set(map(len, ids))):  # prompts of one length together: no padding to attend to
        rows = [i for i, r in enumerate(ids) if len(r) == length]
        batch = torch.tensor([ids[i] for i in rows])
        if patches is None:
            logits, _ = model(None, batch)
        else:
            logits, _ = model(patches[rows], batch, **intervention)
        last = logits[:, -1]
        last[:, :len(SPECIALS)] = float("-inf")
        for i, w in zip(rows, last.argmax(-1).tolist()):
            out[i] = vocab.tokens[w]
    return out


def fit(clip_identity: dict, data: dict, vocab: Vocab, patches: torch.Tensor, captions: list[str], factors,
        cfg: VLMConfig, stages: list[RecipeConfig], progress: bool = True) -> tuple[AdapterVLM, pd.DataFrame]:
    """The adapter VLM trained by `stages` in turn (each a `RecipeConfig`, its zero-step phases skipped), cached
    after every stage keyed by the CLIP, the data (`data`: how the pairs were drawn), the config and the
    stages so far; stages that share a prefix (one base, several tunings) train the prefix once."""
    model, curves = None, []
    for k in range(len(stages)):
        key = {"clip": clip_identity, "data": data, "vocab": vocab.tokens, "config": asdict(cfg),
               "stages": [asdict(r) for r in stages[:k + 1]], "torch": torch.__version__.split("+")[0]}
        start = None if model is None else {n: t.clone() for n, t in model.state_dict().items()}

        def build(folder: Path, recipe=stages[k], start=start):
            torch.manual_seed(cfg.seed)
            m = AdapterVLM(len(vocab), patches.shape[-1], cfg)
            if start is not None:
                m.load_state_dict(start)
            _, curve = train(m, vocab, patches, captions, factors, recipe, progress)
            torch.save(m.state_dict(), folder / "weights.pt")
            curve.to_csv(folder / "curve.csv", index=False)

        folder = cache.cached("vlm", key, build)
        model = AdapterVLM(len(vocab), patches.shape[-1], cfg)
        model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
        curves.append(pd.read_csv(folder / "curve.csv").assign(stage=k))
    return model.eval(), pd.concat(curves, ignore_index=True)


def stages(steps: tuple[int, int, int], context_share: float, seed: int, batch_size: int = 64
           ) -> list[RecipeConfig]:
    """LLaVA's phases as two cached stages: the base (language model, then alignment) and the tuning at a
    context share, so tunings at several shares share one base."""
    lm, align, tune = steps
    return [RecipeConfig(lm_steps=lm, align_steps=align, tune_steps=0, batch_size=batch_size, seed=seed),
            RecipeConfig(lm_steps=0, align_steps=0, tune_steps=tune, batch_size=batch_size, seed=seed,
                   context_share=context_share)]
