"""`mdsgap embed` end to end on data the tests make (a tiny random CLIP): the manifest, equal embeddings from a
CSV, a TSV and tars, resume after deleted shards and after SIGKILL, torchrun with 2 processes, bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_sources import make_dataset, write_tar

from mdsgap.clip import models
from mdsgap.pipeline import cli, shards
from mdsgap.pipeline import embed

TORCHRUN = Path(sys.executable).with_name("torchrun")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ARGS = ["--model", "mdsgap-tiny", "--batch-size", "4", "--shard-size", "8", "--workers", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # as the subprocesses run (ENV)


def mdsgap(*args) -> int:
    return cli.main([str(a) for a in args])


def checksums(run: Path) -> list[str]:
    return [s["sha256"] for s in shards.load_manifest(run)["shards"]]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return folder, make_dataset(folder)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """An uninterrupted single-process run over the CSV."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ref") / "run"
    assert mdsgap("embed", *ARGS, "--data", data[0] / "pairs.csv", "--out", run) == 0
    torch.set_num_threads(old)
    return run


def test_manifest_counts_checksums_and_embeddings(data, reference, capsys):
    folder, pairs = data
    m = shards.load_manifest(reference, model=models.create_clip("mdsgap-tiny").identity)
    assert m["n_pairs"] == 36 and m["dim"] == 16 and [s["n"] for s in m["shards"]] == [8, 8, 8, 8, 4]
    assert m["dataset"]["kind"] == "csv" and m["dataset"]["rows"] == 36 and m["dataset"]["skipped"] == 0
    x, y, keys = (torch.cat(t) if i < 2 else sum(t, []) for i, t in
                  enumerate(zip(*[shards.read_shard(reference / shards.SUBDIR / s["name"]) for s in m["shards"]])))
    assert keys[:2] == ["2:img/0.png", "3:img/1.png"]
    clip = models.create_clip("mdsgap-tiny")
    want_x = clip.encode_images(torch.stack([clip.preprocess(im) for im in map(_pil, pairs.images)]))
    assert torch.allclose(x, want_x.half().float(), atol=1e-3)
    assert torch.allclose(y, clip.encode_texts(pairs.captions).half().float(), atol=1e-3)
    assert not list(reference.rglob(".*tmp*"))


def _pil(array):
    from PIL import Image

    return Image.fromarray(array)


def test_tsv_and_tars_embed_the_same_pairs(data, reference, tmp_path):
    folder, _ = data
    assert mdsgap("embed", *ARGS, "--data", folder / "pairs.tsv", "--out", tmp_path / "tsv") == 0
    assert checksums(tmp_path / "tsv") != checksums(reference)  # their sources differ, their embeddings not
    assert mdsgap("embed", *ARGS, "--data", f"{folder}/shards/{{00000..00002}}.tar", "--out", tmp_path / "tar") == 0
    tar = shards.load_manifest(tmp_path / "tar")
    assert tar["dataset"]["kind"] == "webdataset" and [s["n"] for s in tar["shards"]] == [12, 12, 12]
    for other in ("tsv", "tar"):
        a = torch.cat([x for _, x, _, _ in shards.iter_shards(reference)])
        b = torch.cat([x for _, x, _, _ in shards.iter_shards(tmp_path / other)])
        assert torch.equal(a, b)


def test_resume_after_deleted_shards_is_byte_identical(data, reference, tmp_path, capsys):
    run = tmp_path / "run"
    assert mdsgap("embed", *ARGS, "--data", data[0] / "pairs.csv", "--out", run) == 0
    for name in (shards.shard_name(1), f"{shards.shard_name(1)}.json", shards.MANIFEST):
        (run / (name if name == shards.MANIFEST else f"{shards.SUBDIR}/{name}")).unlink()
    capsys.readouterr()
    assert mdsgap("embed", *ARGS, "--data", data[0] / "pairs.csv", "--out", run) == 0
    assert "(4 finished before)" in capsys.readouterr().out
    assert checksums(run) == checksums(reference)


@pytest.mark.slow
def test_kill_and_rerun_gives_the_uninterrupted_result(data, reference, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "mdsgap.pipeline.cli", "embed", *ARGS, "--data", str(data[0] / "pairs.csv"), "--out", str(run)]
    proc = subprocess.Popen(cmd, env={**ENV, embed.PAUSE_ENV: "0.5"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = run / shards.SUBDIR / f"{shards.shard_name(0)}.json"
    deadline = time.time() + 60
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (run / shards.MANIFEST).exists(), "killed after the first shard, before the end"
    assert mdsgap(*cmd[3:]) == 0
    assert checksums(run) == checksums(reference)
    assert not list(run.rglob(".*tmp*"))


@pytest.mark.slow
def test_torchrun_two_processes_match_one(data, reference, tmp_path):
    run = tmp_path / "run"
    out = subprocess.run([str(TORCHRUN), "--nproc_per_node=2", "-m", "mdsgap.pipeline.cli", "embed", *ARGS,
                          "--data", str(data[0] / "pairs.csv"), "--out", str(run)],
                         env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert checksums(run) == checksums(reference)
    assert "embedded 36 pairs" in out.stdout


def test_another_model_or_dataset_in_out_is_refused(data, reference, tmp_path, capsys):
    assert mdsgap("embed", *ARGS, "--seed", "1", "--data", data[0] / "pairs.csv", "--out", reference) == 2
    err = capsys.readouterr().err
    assert "mdsgap embed: error:" in err and "holds embeddings of name='mdsgap-tiny' pretrained='' seed=0" in err
    assert "choose another --out" in err
    assert mdsgap("embed", *ARGS, "--shard-size", "5", "--data", data[0] / "pairs.csv", "--out", reference) == 2
    assert "other data or options (differing: ['inputs', 'shard_size'])" in capsys.readouterr().err


def test_skip_bad_counts_left_out_samples(data, tmp_path):
    folder, _ = data
    write_tar(tmp_path / "00000.tar", {"a.png": (folder / "img" / "0.png").read_bytes(), "a.txt": b"a circle",
                                       "b.png": b"not a png", "b.txt": b"broken", "c.png": b"no caption"})
    assert mdsgap("embed", *ARGS, "--data", tmp_path / "00000.tar", "--out", tmp_path / "run") == 2
    assert mdsgap("embed", *ARGS, "--skip-bad", "--data", tmp_path / "00000.tar", "--out", tmp_path / "run") == 0
    m = shards.load_manifest(tmp_path / "run")
    assert m["n_pairs"] == 1 and m["dataset"]["skipped"] == 2
    skipped = json.loads((tmp_path / "run" / shards.SUBDIR / "emb-00000.skipped.json").read_text())
    assert [s["where"].split(", ")[-1] for s in skipped] == ["sample b", "sample c"]


@pytest.mark.parametrize("args, message", [
    (["--model", "vit-b-33"], r"Unknown model name 'vit-b-33'. Close matches: \['ViT-B-32'"),
    (["--data", "{folder}/shards/{{00007..00009}}.tar"], "matches no file"),
    (["--data", "{tmp}/bad.tar"], r"shard .*bad.tar is not a readable tar file \(truncated download\?\): "
                                  "re-download it or leave it out of the pattern"),
    (["--img-key", "path"], r"missing column\(s\) \['path'\]; found \['filepath', 'title'\]"),
    (["--model", "mdsgap-small", "--pretrained", "{ckpt}"], "this checkpoint has the keys of mdsgap-tiny, not "
                                                            "mdsgap-small: pass --model mdsgap-tiny"),
])
def test_bad_input_is_one_line_with_the_fix(data, tmp_path, capsys, args, message):
    folder, _ = data
    ckpt = tmp_path / "tiny.pt"
    torch.save(models.create_clip("mdsgap-tiny").model.state_dict(), ckpt)
    (tmp_path / "bad.tar").write_bytes(b"not a tar" * 100)
    args = [a.format(folder=folder, ckpt=ckpt, tmp=tmp_path) for a in args]
    assert mdsgap("embed", *ARGS, "--data", folder / "pairs.csv", "--out", tmp_path / "run", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("mdsgap embed: error: ")
    assert __import__("re").search(message, err), err
    assert not list(tmp_path.glob("run/**/*.safetensors*")), "no shard written on bad input"


def test_model_names_resolve_in_any_case(data, tmp_path):
    assert mdsgap("embed", *ARGS[2:], "--model", "MDSGAP-Tiny", "--data", data[0] / "pairs.csv",
                  "--out", tmp_path / "run") == 0
    assert shards.load_manifest(tmp_path / "run")["model"]["name"] == "mdsgap-tiny"
