"""Notebook parameters: named profiles and type checks that name the problem and the fix.

A profile is a YAML file in `notebooks/profiles/`: a `common` block of parameters shared by every
notebook and an optional block per notebook (keyed by the notebook's file stem) that overrides it.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml

PROFILE_DIR = Path(__file__).resolve().parent.parent / "notebooks" / "profiles"


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def matches(value, tp) -> bool:
    """Whether value fits a (simple) type annotation: builtins, Literal, Union/Optional, list/tuple/dict."""
    if tp is typing.Any:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return all(matches(v, args[0]) for v in value)
        if origin is tuple and args:
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))
        return all(matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        if not isinstance(value, dict):
            return False
        return all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items()) if args else True
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def check_fields(obj) -> None:
    """Raise TypeError naming the field, the expected type and the value, for a dataclass instance."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        tp = hints[f.name]
        # Nested configs may arrive as dicts (from YAML or papermill); the dataclass converts them.
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            continue
        if typing.get_origin(tp) is tuple and isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            continue
        if not matches(value, tp):
            raise TypeError(
                f"{type(obj).__name__}.{f.name} must be {_type_name(tp)}, got {type(value).__name__} {value!r}. "
                f"Fix the parameter (default: {f.default if f.default is not dataclasses.MISSING else '...'}).")


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


def from_namespace(cls, namespace: dict):
    """An instance of a parameters dataclass from the fields a notebook's globals() defines."""
    return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})


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
    ("world, CLIP and data", "experiment.Settings", "mdsgap.experiment", "Settings.from_params"),
    ("feature extractors", "features.Extractors", "mdsgap.features", "Extractors.from_params"),
    ("sweep CLIPs", "training.SweepRecipe.PARAMS", "mdsgap.training", "SweepRecipe.from_params"),
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
