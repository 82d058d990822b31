"""Notebook parameters: named profiles and type checks that name the problem and the fix.

A profile is a YAML file in `notebooks/profiles/`: a `common` block of parameters shared by every
notebook and an optional block per notebook (keyed by the notebook's file stem) that overrides it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from mdsgap.config import _type_name, matches

PROFILE_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "profiles"


def check_params(values: dict, expected: dict) -> dict:
    """Check notebook parameters against their expected types ({name: type}); returns the values."""
    unknown = sorted(set(values) - set(expected))
    if unknown:
        raise TypeError(f"Unknown parameter(s) {unknown}. Valid parameters: {sorted(expected)}")
    for name, tp in expected.items():
        if name in values and not matches(values[name], tp):
            raise TypeError(f"Parameter {name!r} must be {_type_name(tp)}, got {type(values[name]).__name__} "
                            f"{values[name]!r}.")
    return values


def check_declared(namespace: dict, expected: dict) -> dict:
    """`check_params` on the named parameters as a notebook's globals() holds them (no name written twice)."""
    return check_params({name: namespace[name] for name in expected}, expected)


def list_profiles(profile_dir: Path = PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in Path(profile_dir).glob("*.yml"))


def profile_blocks(name: str, notebook: str, profile_dir: Path = PROFILE_DIR) -> tuple[dict, dict]:
    """(common, own): a profile's shared parameters and the block for one notebook."""
    available = list_profiles(profile_dir)
    if name not in available:
        raise ValueError(f"Unknown profile {name!r}. Available profiles: {available} (files in {profile_dir}).")
    data = yaml.safe_load((Path(profile_dir) / f"{name}.yml").read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"Profile {name!r} must be a mapping of parameter blocks, got {type(data).__name__}.")
    return dict(data.get("common") or {}, profile=name), dict(data.get(notebook) or {})


GROUPS = (
    ("world, CLIP and data", "experiment.ExperimentConfig", "mdsgap.experiment", "ExperimentConfig.from_params"),
    ("feature extractors", "features.ExtractorsConfig", "mdsgap.features", "ExtractorsConfig.from_params"),
    ("sweep CLIPs", "training.SweepConfig.PARAMS", "mdsgap.clip.training", "SweepConfig.from_params"),
)
"""Parameter groups chapters share, with defaults in dataclasses, so a chapter's parameters cell declares
only its own knobs: (label, where the defaults live, module, the call that marks a chapter as using them)."""


def shared_groups(source: str) -> list[tuple[str, str, dict]]:
    """(label, home, defaults) of each shared group a notebook's source takes its values from."""
    import importlib

    out = []
    for label, home, module, marker in GROUPS:
        if marker not in source:
            continue
        mod = importlib.import_module(module)
        cls = getattr(mod, marker.split(".")[0])
        if hasattr(cls, "PARAMS"):
            inst = cls()
            defaults = {name: getattr(inst, f) for name, f in cls.PARAMS.items()}
        else:
            defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        out.append((label, home, defaults))
    return out
