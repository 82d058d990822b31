"""The feature sets MDS scores, behind one interface: raw embedding dimensions, SAE latents, NCL features.

Every feature set maps unit-normalised embeddings of either modality to non-negative activations, so
MDS compares like with like. Trained extractors are cached, keyed by the model, the data and their config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from mdsgap import cache, gap, ncl, sae
from mdsgap.params import check_fields, from_namespace


@dataclass
class FeatureSet:
    """A named map from embeddings (n, d) to non-negative activations (n, n_features)."""

    name: str
    n_features: int
    encode: Callable[[torch.Tensor], torch.Tensor]

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
    return {"kind": kind, "format": FORMAT, "cfg": dataclasses.asdict(cfg), "config_type": type(getattr(cfg, "activation", cfg)).__name__,
            "model": model_identity, "data": data_identity}


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
    """An SAE trained on both modalities' unit embeddings together (cached)."""
    x, y = gap.normalize(x).float(), gap.normalize(y).float()
    model = _cached_module("sae", cfg, model_identity, data_identity,
                           lambda: sae.train_sae(torch.cat([x, y]), cfg, progress=progress),
                           lambda: sae.SparseAutoencoder(x.shape[1], cfg))
    return FeatureSet(f"SAE {sae.describe(cfg)}", cfg.n_latents, lambda e: model.encode(gap.normalize(e).float())), model


def ncl_features(x: torch.Tensor, y: torch.Tensor, cfg: ncl.NCLConfig, model_identity: dict, data_identity: dict,
                 progress: bool = True) -> tuple[FeatureSet, "ncl.NCLHead"]:
    """An NCL head trained with the CLIP loss on the pairs (cached)."""
    head = _cached_module("ncl", cfg, model_identity, data_identity,
                          lambda: ncl.train_ncl(x.float(), y.float(), cfg, progress=progress),
                          lambda: ncl.NCLHead(x.shape[1], cfg))
    return FeatureSet(f"NCL, {cfg.n_features} features", cfg.n_features, head), head


@dataclass(frozen=True)
class Extractors:
    """Notebook parameters of the feature sets every MDS chapter compares."""

    sae_latents: int = 256
    sae_k: int = 8
    """Active latents per sample (TopK, BatchTopK)."""
    sae_l1: float = 0.003
    """L1 coefficient of the ReLU SAE."""
    sae_steps: int = 1500
    ncl_features: int = 256
    ncl_steps: int = 1000

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_params(cls, namespace: dict) -> "Extractors":
        """Pick this class's fields out of a notebook's globals()."""
        return from_namespace(cls, namespace)

    def sae_configs(self, seed: int) -> dict[str, "sae.SAEConfig"]:
        acts = {"TopK": sae.TopK(self.sae_k), "BatchTopK": sae.BatchTopK(self.sae_k), "ReLU": sae.ReLU(self.sae_l1)}
        return {name: sae.SAEConfig(n_latents=self.sae_latents, activation=a, steps=self.sae_steps, seed=seed)
                for name, a in acts.items()}

    def ncl_config(self, seed: int) -> ncl.NCLConfig:
        return ncl.NCLConfig(n_features=self.ncl_features, steps=self.ncl_steps, seed=seed)


TOOLS = ("raw", "TopK", "BatchTopK", "ReLU", "NCL")


def build_sets(x: torch.Tensor, y: torch.Tensor, ex: Extractors, seed: int, model_identity: dict, data_identity: dict,
               tools=TOOLS, progress: bool = True) -> tuple[dict[str, FeatureSet], dict[str, "sae.SparseAutoencoder"]]:
    """The named feature sets ({tool: FeatureSet}) and the trained SAEs among them ({tool: SAE}), all cached."""
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        raise ValueError(f"Unknown feature tool(s) {unknown}. Available: {list(TOOLS)}")
    sets, saes = {}, {}
    cfgs = ex.sae_configs(seed)
    for tool in tools:
        if tool == "raw":
            sets[tool] = raw_features(x.shape[1])
        elif tool == "NCL":
            sets[tool], _ = ncl_features(x, y, ex.ncl_config(seed), model_identity, data_identity, progress)
        else:
            sets[tool], saes[tool] = sae_features(x, y, cfgs[tool], model_identity, data_identity, progress)
    return sets, saes
