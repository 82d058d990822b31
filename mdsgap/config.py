"""Config dataclasses that check themselves: a wrong type names the field, the expected type and the fix.

Every config of the library (`world.WorldConfig`, `clip.training.TrainConfig`, ...) calls `check_fields` in
its `__post_init__`; `from_namespace` builds one from the parameters a notebook (or any dict) defines.
"""
from __future__ import annotations

import dataclasses
import types
import typing


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


def from_namespace(cls, namespace: dict):
    """An instance of a parameters dataclass from the fields a notebook's globals() defines."""
    return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})
