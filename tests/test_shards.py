"""Embedding shards and their manifest: round trip, resume records, checksum and model checks."""
import pytest
import torch

from mdsgap.pipeline import shards


def make_run(tmp_path, n_shards=3, n=5, d=4):
    g = torch.Generator().manual_seed(0)
    infos = [shards.write_shard(tmp_path, i, torch.randn(n, d, generator=g), torch.randn(n, d, generator=g),
                                [f"k{i}-{j}" for j in range(n)], f"src-{i}") for i in range(n_shards)]
    shards.write_manifest(tmp_path, {"name": "m"}, {"path": "d.csv"}, infos)
    return infos


def test_round_trip_is_float16_with_keys(tmp_path):
    img = torch.randn(5, 4)
    shards.write_shard(tmp_path, 0, img, -img, list("abcde"), "s")
    x, y, keys = shards.read_shard(tmp_path / shards.SUBDIR / shards.shard_name(0))
    assert torch.equal(x, img.half().float()) and torch.equal(y, -img.half().float()) and keys == list("abcde")
    assert not list(tmp_path.rglob(".*tmp*")), "no temporary files left"


def test_finished_needs_file_and_record(tmp_path):
    assert shards.finished(tmp_path, 0) is None
    info = shards.write_shard(tmp_path, 0, torch.ones(2, 3), torch.ones(2, 3), ["a", "b"], "s")
    assert shards.finished(tmp_path, 0) == info
    (tmp_path / shards.SUBDIR / f"{shards.shard_name(0)}.json").unlink()
    assert shards.finished(tmp_path, 0) is None


def test_manifest_counts_and_rank_split(tmp_path):
    make_run(tmp_path)
    m = shards.load_manifest(tmp_path)
    assert m["n_pairs"] == 15 and m["dim"] == 4
    assert [i for i, *_ in shards.iter_shards(tmp_path, rank=1, world_size=2)] == [1]
    assert [i for i, *_ in shards.iter_shards(tmp_path)] == [0, 1, 2]


def test_checksum_mismatch_names_the_shard_and_the_fix(tmp_path):
    make_run(tmp_path)
    file = tmp_path / shards.SUBDIR / shards.shard_name(1)
    file.write_bytes(file.read_bytes()[:-3] + b"xyz")
    with pytest.raises(shards.ManifestError, match=r"emb-00001.*checksum.*rerun `mdsgap embed`"):
        shards.load_manifest(tmp_path)


def test_a_run_of_another_model_is_refused(tmp_path):
    make_run(tmp_path)
    with pytest.raises(shards.ManifestError, match="holds embeddings of"):
        shards.load_manifest(tmp_path, model={"name": "other"})
    # a run recorded before the identity held the architecture's config says so, not "m is not m"
    with pytest.raises(shards.ManifestError, match="name='m' with another architecture config"):
        shards.load_manifest(tmp_path, model={"name": "m", "architecture": {"embed_dim": 8}})


def test_unfinished_run_says_how_to_finish(tmp_path):
    with pytest.raises(shards.ManifestError, match="not a finished `mdsgap embed` run"):
        shards.load_manifest(tmp_path)


def test_shape_mismatch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="one \\(n, d\\) shape"):
        shards.write_shard(tmp_path, 0, torch.ones(2, 3), torch.ones(3, 3), ["a", "b"], "s")
