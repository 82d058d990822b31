import json

import pytest

from mdsgap import cache


def test_hit_reuses_and_changed_config_misses():
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "value.txt").write_text("x")

    a = cache.cached("things", {"n": 1}, build)
    b = cache.cached("things", {"n": 1}, build)
    c = cache.cached("things", {"n": 2}, build)
    assert a == b != c and len(calls) == 2
    assert json.loads((a / "config.json").read_text()) == {"n": 1}


def test_failed_build_leaves_no_entry():
    def build(folder):
        (folder / "partial.txt").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.cached("things", {"n": 3}, build)
    assert not cache.entry_path("things", {"n": 3}).exists()
    assert list(cache.entry_path("things", {"n": 3}).parent.iterdir()) == []


def test_stale_entry_with_other_config_is_rebuilt():
    path = cache.entry_path("things", {"n": 4})
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"n": 999}))
    built = []
    cache.cached("things", {"n": 4}, lambda f: built.append(f))
    assert built and json.loads((path / "config.json").read_text()) == {"n": 4}
