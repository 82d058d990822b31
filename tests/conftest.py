import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes its cache entries into a fresh temporary folder, never the user's cache."""
    monkeypatch.setenv("MDSGAP_CACHE", str(tmp_path_factory.mktemp("cache")))
