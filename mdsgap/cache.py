"""An on-disk cache of trained models and embeddings, keyed by their full configuration.

An entry is a folder named by a hash of (kind, configuration, CACHE_VERSION). It is built in a
temporary folder and renamed into place, so a crash never leaves a half-written entry, and its
`config.json` is compared with the request on every hit, so a changed configuration never reuses
a stale entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

CACHE_VERSION = 2  # bump when the code that fills entries changes what it writes (2: the world of 0.7)


def cache_dir() -> Path:
    """$MDSGAP_CACHE, or ~/.cache/mdsgap."""
    return Path(os.environ.get("MDSGAP_CACHE") or Path.home() / ".cache" / "mdsgap")


def _canonical(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def entry_path(kind: str, config: dict) -> Path:
    digest = hashlib.sha256(f"{kind}|{CACHE_VERSION}|{_canonical(config)}".encode()).hexdigest()[:20]
    return cache_dir() / kind / digest


def cached(kind: str, config: dict, build: Callable[[Path], None]) -> Path:
    """The folder of the entry for (kind, config); `build(tmp_folder)` fills it on a miss."""
    path = entry_path(kind, config)
    stored = path / "config.json"
    if stored.is_file():
        if json.loads(stored.read_text()) == json.loads(_canonical(config)):
            return path
        shutil.rmtree(path)  # a hash collision or a hand-edited entry: never reuse it
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        build(tmp)
        (tmp / "config.json").write_text(_canonical(config))
        try:
            os.replace(tmp, path)
        except OSError:  # another process filled it meanwhile; theirs is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
