"""The feature sets MDS scores, behind one interface: raw embedding dimensions, SAE latents (plain, or trained on
matched pairs: aligned, IsoEnergy, shared support), NCL features.

Every feature set maps unit-normalised embeddings of either modality to non-negative activations, so
MDS compares like with like. Trained extractors are cached, keyed by the model, the data and their config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from mdsgap import cache, gap
from mdsgap.features import ncl, sae
from mdsgap.config import check_fields, from_namespace


@dataclass
class FeatureSet:
    """A named map from embeddings (n, d) to non-negative activations (n, n_features); `encode_pair`, where
    set, codes matched pairs together (a shared-support SAE), and `encode_pairs` uses it."""

    name: str
    n_features: int
    encode: Callable[[torch.Tensor], torch.Tensor]
    encode_pair: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def batches(self, e: torch.Tensor, batch_size: int = 4096) -> Iterator[torch.Tensor]:
        for chunk in e.split(batch_size):
            with torch.no_grad():
                a = self.encode(chunk)
            yield a


def raw_features(d: int) -> FeatureSet:
    """Each embedding dimension split into its positive and its negative half (2d non-negative features)."""
    def encode(e):
        e = gap.normalize(e).float()
        return torch.cat([torch.relu(e), torch.relu(-e)], dim=1)
    return FeatureSet("raw dimensions", 2 * d, encode)


FORMAT = 2  # bump when what an extractor's cache entry holds changes


def _key(kind: str, cfg, model_identity: dict, data_identity: dict) -> dict:
    cfg_dict = dataclasses.asdict(cfg)
    pairing = getattr(cfg, "pairing", None)
    if pairing is None:
        cfg_dict.pop("pairing", None)  # SAEs without a pairing keep the keys they had before the field existed
    key = {"kind": kind, "format": FORMAT, "cfg": cfg_dict, "config_type": type(getattr(cfg, "activation", cfg)).__name__,
           "model": model_identity, "data": data_identity}
    if pairing is not None:
        key["pairing_type"] = type(pairing).__name__
    return key


def _cached_module(kind: str, cfg, model_identity: dict, data_identity: dict, train: Callable, make: Callable):
    """Train (on a cache miss) and load a feature extractor; its weights and training curve are the entry."""
    def build(folder: Path):
        module, curve = train()
        torch.save(module.state_dict(), folder / "weights.pt")
        curve.to_csv(folder / "curve.csv", index=False)

    folder = cache.cached(kind, _key(kind, cfg, model_identity, data_identity), build)
    module = make()
    module.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return module.eval()


def sae_features(x: torch.Tensor, y: torch.Tensor, cfg: sae.SAEConfig, model_identity: dict, data_identity: dict,
                 progress: bool = True) -> tuple[FeatureSet, "sae.SparseAutoencoder"]:
    """An SAE trained on both modalities' unit embeddings together (cached). A config that pairs the modalities
    (`sae.is_paired`: a pairing objective or SharedTopK) is trained by `sae.train_paired_sae` on the pairs
    (x[i], y[i]) and cached under its own kind. Its feature set encodes one modality at a time, except SharedTopK,
    whose support is chosen per pair: it codes pairs only (`encode_pairs`) and refuses a lone side, which has no
    partner (acting as a plain TopK there would score another dictionary than the one trained)."""
    x, y = gap.normalize(x).float(), gap.normalize(y).float()
    if sae.is_paired(cfg):
        train, kind = (lambda: sae.train_paired_sae(x, y, cfg, progress=progress)), "paired_sae"
    else:
        train, kind = (lambda: sae.train_sae(torch.cat([x, y]), cfg, progress=progress)), "sae"
    model = _cached_module(kind, cfg, model_identity, data_identity, train, lambda: sae.SparseAutoencoder(x.shape[1], cfg))
    name = f"SAE {sae.describe(cfg)}"
    if isinstance(cfg.activation, sae.SHARED_SUPPORT):
        def lone(e):
            raise ValueError(f"{name} chooses one support per image-caption pair, so a lone side has no code; "
                             "encode matched pairs with features.encode_pairs(fs, x, y).")
        pair = lambda a, b: model.encode_pair(gap.normalize(a).float(), gap.normalize(b).float())  # noqa: E731
        return FeatureSet(name, cfg.n_latents, lone, pair), model
    return FeatureSet(name, cfg.n_latents, lambda e: model.encode(gap.normalize(e).float())), model


def ncl_features(x: torch.Tensor, y: torch.Tensor, cfg: ncl.NCLConfig, model_identity: dict, data_identity: dict,
                 progress: bool = True) -> tuple[FeatureSet, "ncl.NCLHead"]:
    """An NCL head trained with the CLIP loss on the pairs (cached)."""
    head = _cached_module("ncl", cfg, model_identity, data_identity,
                          lambda: ncl.train_ncl(x.float(), y.float(), cfg, progress=progress),
                          lambda: ncl.NCLHead(x.shape[1], cfg))
    return FeatureSet(f"NCL, {cfg.n_features} features", cfg.n_features, head), head


@dataclass(frozen=True)
class ExtractorsConfig:
    """Notebook parameters of the feature sets every MDS chapter compares."""

    sae_latents: int = 256
    sae_k: int = 8
    """Active latents per sample (TopK, BatchTopK)."""
    sae_l1: float = 0.003
    """L1 coefficient of the ReLU SAE."""
    sae_steps: int = 1500
    sae_align_beta: float = 0.1
    """Alignment penalty of the "Aligned" SAE (see sae.Alignment for the scale)."""
    sae_isoenergy_coef: float = 1.0
    """IsoEnergy coefficient of the "IsoEnergy" SAE (see sae.IsoEnergy)."""
    ncl_features: int = 256
    ncl_steps: int = 1000

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_params(cls, namespace: dict) -> "ExtractorsConfig":
        """Pick this class's fields out of a notebook's globals()."""
        return from_namespace(cls, namespace)

    def sae_configs(self, seed: int) -> dict[str, "sae.SAEConfig"]:
        acts = {"TopK": sae.TopK(self.sae_k), "BatchTopK": sae.BatchTopK(self.sae_k), "ReLU": sae.ReLU(self.sae_l1)}
        return {name: sae.SAEConfig(n_latents=self.sae_latents, activation=a, steps=self.sae_steps, seed=seed)
                for name, a in acts.items()}

    def paired_sae_configs(self, seed: int) -> dict[str, "sae.SAEConfig"]:
        """The SAEs trained on matched pairs: TopK with the alignment penalty, TopK with the IsoEnergy loss, the
        shared-support SharedTopK and the bilingual dictionary; same latents, k and steps as `sae_configs`."""
        variants = {"Aligned": (sae.TopK(self.sae_k), sae.Alignment(self.sae_align_beta)),
                    "IsoEnergy": (sae.TopK(self.sae_k), sae.IsoEnergy(self.sae_isoenergy_coef)),
                    "SharedTopK": (sae.SharedTopK(self.sae_k), None),
                    "Bilingual": (sae.Bilingual(self.sae_k), None)}
        return {name: sae.SAEConfig(n_latents=self.sae_latents, activation=a, steps=self.sae_steps, seed=seed, pairing=p)
                for name, (a, p) in variants.items()}

    def config(self, tool: str, seed: int) -> "sae.SAEConfig":
        """The SAE config of one tool by name, plain or paired (e.g. the chosen dictionary,
        `comparison.CHOSEN[0]`)."""
        cfgs = self.sae_configs(seed)
        if tool not in cfgs:  # the paired configs only when asked for (building them warns on a small k)
            cfgs = self.paired_sae_configs(seed)
        if tool not in cfgs:
            raise ValueError(f"{tool!r} is not an SAE tool. Available: {[*self.sae_configs(seed), *cfgs]}")
        return cfgs[tool]

    def ncl_config(self, seed: int) -> ncl.NCLConfig:
        return ncl.NCLConfig(n_features=self.ncl_features, steps=self.ncl_steps, seed=seed)


TOOLS = ("raw", "TopK", "BatchTopK", "ReLU", "NCL")
"""The tools `build_sets` builds by default (what the chapters compare)."""
PAIRED_TOOLS = ("Aligned", "IsoEnergy", "SharedTopK", "Bilingual")
"""SAEs trained on matched pairs (`ExtractorsConfig.paired_sae_configs`); built when asked for by name."""
ALL_TOOLS = TOOLS + PAIRED_TOOLS


def build_sets(x: torch.Tensor, y: torch.Tensor, ex: ExtractorsConfig, seed: int, model_identity: dict, data_identity: dict,
               tools=TOOLS, progress: bool = True) -> tuple[dict[str, FeatureSet], dict[str, "sae.SparseAutoencoder"]]:
    """The named feature sets ({tool: FeatureSet}) and the trained SAEs among them ({tool: SAE}), all cached.
    `tools` picks among ALL_TOOLS; the default, TOOLS, leaves out the paired SAEs (PAIRED_TOOLS)."""
    unknown = sorted(set(tools) - set(ALL_TOOLS))
    if unknown:
        raise ValueError(f"Unknown feature tool(s) {unknown}. Available: {list(ALL_TOOLS)}")
    sets, saes = {}, {}
    for tool in tools:
        if tool == "raw":
            sets[tool] = raw_features(x.shape[1])
        elif tool == "NCL":
            sets[tool], _ = ncl_features(x, y, ex.ncl_config(seed), model_identity, data_identity, progress)
        else:
            sets[tool], saes[tool] = sae_features(x, y, ex.config(tool, seed), model_identity, data_identity,
                                                  progress)
    return sets, saes


def encode_all(fs: FeatureSet, e: torch.Tensor) -> np.ndarray:
    """Activations of every feature on every row of e, as one (n, n_features) float64 numpy array."""
    return torch.cat(list(fs.batches(e))).double().numpy()


def encode_pairs(fs: FeatureSet, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Codes of matched pairs (row i of x with row i of y) as two (n, n_features) float64 arrays: together where
    the feature set codes pairs (a shared support), else each side alone (`encode_all`)."""
    if fs.encode_pair is None:
        return encode_all(fs, x), encode_all(fs, y)
    if len(x) != len(y):
        raise ValueError(f"encode_pairs needs matched pairs, got {len(x)} images and {len(y)} captions.")
    parts = []
    with torch.no_grad():
        for a, b in zip(x.split(batch_size), y.split(batch_size)):
            parts.append(fs.encode_pair(a, b))
    return tuple(torch.cat([p[k] for p in parts]).double().numpy() for k in (0, 1))


def decoder_atoms(tool: str, fs: FeatureSet, model=None) -> np.ndarray | None:
    """The feature set's decoder atoms (n_features, d), one direction per feature, for the bridge scores: an
    SAE's decoder rows, the signed unit axes for the raw dimensions; None for NCL, which has no decoder."""
    if model is not None and getattr(model, "bilingual", False):
        return None  # two decoders, one per modality: no single atom per latent for the bridge
    if model is not None and hasattr(model, "W_dec"):
        return model.W_dec.detach().double().numpy()
    if tool == "raw":
        eye = np.eye(fs.n_features // 2)
        return np.concatenate([eye, -eye])
    return None
