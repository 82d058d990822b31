"""The pipeline's train-sae, score and report stages through `mdsgap.pipeline.cli.main`, on embedding runs the tests make:
scores against an in-memory computation, resume after SIGKILL, torchrun with 2 processes (gloo on CPU), bad input."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap import attribution
from mdsgap.attribution import dominance
from mdsgap.pipeline import cli, shards
from mdsgap.pipeline import report, train

TORCHRUN = Path(sys.executable).with_name("torchrun")
SAE_ARGS = ["--latents", "32", "--k", "4", "--steps", "300", "--batch-size", "64", "--lr", "3e-3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")  # as the subprocesses run (ENV)


def make_run(path: Path, n_shards: int = 3, n: int = 120, d: int = 16, seed: int = 0) -> Path:
    """A finished embedding run: sparse combinations of shared atoms, images and captions offset apart."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(24, d, generator=g)
    infos = []
    for i in range(n_shards):
        codes = (torch.rand(n, 24, generator=g) > 0.85) * torch.rand(n, 24, generator=g)
        img = codes @ atoms + 0.5 + 0.1 * torch.randn(n, d, generator=g)
        txt = codes @ atoms - 0.5 + 0.1 * torch.randn(n, d, generator=g)
        infos.append(shards.write_shard(path, i, img, txt, [f"pair-{i}-{j}" for j in range(n)], f"part-{i}"))
    shards.write_manifest(path, {"name": "tiny", "pretrained": "none"}, {"path": "synthetic"}, infos)
    return path


def mdsgap(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A run with a trained SAE, scored with the bridge, and reported."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    run = make_run(tmp_path_factory.mktemp("run"))
    assert mdsgap("train-sae", "--run", run, *SAE_ARGS, "--checkpoint-every", "100") == 0
    assert mdsgap("score", "--run", run, "--bridge", "--top-m", "5") == 0
    torch.set_num_threads(old)
    return run


def in_memory(run: Path):
    """Every pair's codes at once: the SAE applied to all embeddings."""
    model, _ = train.load_sae(run)
    parts = list(shards.iter_shards(run))
    x, y = (train.prepare(torch.cat([p[k] for p in parts])) for k in (1, 2))
    keys = [k for p in parts for k in p[3]]
    with torch.no_grad():
        return model, model.encode(x), model.encode(y), keys


def test_train_score_report_end_to_end(scored):
    info = json.loads((scored / "sae" / "sae.json").read_text())
    assert info["description"] == "TopK(k=4), 32 latents" and info["d_in"] == 16
    assert info["metrics"]["both"]["FVU"] < 0.5 and info["metrics"]["image"]["L0"] == pytest.approx(4.0)
    assert not list((scored / "sae").glob("checkpoint-*")), "checkpoints are removed once final.pt is written"
    assert mdsgap("report", "--run", scored) == 0
    assert mdsgap("report", "--run", scored, "--format", "html") == 0
    md = (scored / "report.md").read_text()
    assert "TopK(k=4), 32 latents" in md and "| ImgD |" in md and "![MDS histogram](report-mds.png)" in md
    assert (scored / "report-mds.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (scored / "report.html").read_text()
    assert not list(scored.rglob(".*tmp*")), "no temporary files left"
    run = report.load_run(scored)
    assert run["manifest"]["n_pairs"] == 360 and len(run["scores"]) == 32
    assert isinstance(run["scores"].top_image[0], list) and run["sae"]["metrics"] == info["metrics"]


def test_scores_equal_an_in_memory_computation(scored):
    df = pd.read_csv(scored / "scores.csv")
    model, ax, ay, keys = in_memory(scored)
    stats = dominance.DominanceStats(32).update(ax, ay)
    firing = stats.firing()
    assert (df.fires_pair == firing).all()
    assert (df.fires_image == (ax > 1e-8).sum(0).numpy()).all() and (df.fires_text == (ay > 1e-8).sum(0).numpy()).all()
    for v in dominance.VARIANTS:
        s = stats.scores(v)
        np.testing.assert_allclose(df[f"mds_{v}"], s, atol=1e-6, equal_nan=True)
        labels = dominance.classify(s, firing, dominance.std_thresholds(s, 1.0, firing >= 5), 5)
        assert list(df[f"class_{v}"]) == list(labels)
    w = attribution.CrossCovariance(32).update(ax, ay).matrix()
    b = attribution.bridge(w, model.W_dec.detach().double())
    np.testing.assert_allclose(df.mu_bridge, attribution.bridge_modality_score(b), atol=1e-6, equal_nan=True)
    for side, acts in (("top_image", ax), ("top_text", ay)):
        for f, cell in enumerate(df[side]):
            col = acts[:, f].numpy()
            order = [i for i in np.argsort(-col, kind="stable")[:5] if col[i] > 1e-8]
            assert json.loads(cell) == [keys[i] for i in order]


def test_every_variant_and_pairing_trains(tmp_path):
    run = make_run(tmp_path)
    for variant, pairing in [("batchtopk", "none"), ("relu", "none"), ("sharedtopk", "none"),
                             ("topk", "alignment"), ("topk", "isoenergy")]:
        args = ["--latents", "16", "--k", "3", "--steps", "30", "--batch-size", "32", "--out-name", variant + pairing]
        assert mdsgap("train-sae", "--run", run, "--variant", variant, "--pairing", pairing, *args) == 0
        assert mdsgap("score", "--run", run, "--sae", variant + pairing, "--top-m", "2") == 0
        assert len(pd.read_csv(tmp_path / f"scores-{variant}{pairing}.csv")) == 16


def test_stream_order_depends_only_on_seed_and_step(tmp_path):
    run = make_run(tmp_path, n=50)
    manifest = shards.load_manifest(run)
    whole = [b for _, b in zip(range(12), train.Stream(run, manifest, 3, False).batches(0, 64))]
    resumed = [b for _, b in zip(range(5), train.Stream(run, manifest, 3, False).batches(7, 64))]
    assert all(torch.equal(a[1], b[1]) and a[0] == b[0] for a, b in zip(whole[7:], resumed))
    epoch = torch.cat([b for _, b in whole])[:300]  # 3 shards x 50 pairs x 2 modalities: one epoch
    every = train.prepare(torch.cat([torch.cat([p[1], p[2]]) for p in shards.iter_shards(run)]))
    assert torch.equal(epoch[epoch[:, 0].argsort()], every[every[:, 0].argsort()]), "each item once per epoch"


def test_a_finished_sae_is_kept_and_another_config_refused(scored, capsys):
    before = (scored / "sae" / "final.pt").read_bytes()
    assert mdsgap("train-sae", "--run", scored, *SAE_ARGS) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert mdsgap("train-sae", "--run", scored, *SAE_ARGS[:3], "5", *SAE_ARGS[4:]) == 2
    err = capsys.readouterr().err
    assert "holds an SAE trained with TopK(k=4), 32 latents" in err and "--out-name" in err
    assert (scored / "sae" / "final.pt").read_bytes() == before


def test_bad_input_names_problem_and_fix(tmp_path, scored, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for stage in ("train-sae", "score", "report"):
        assert mdsgap(stage, "--run", empty) == 2
        assert "not a finished `mdsgap embed` run" in capsys.readouterr().err
    fresh = make_run(tmp_path / "fresh")
    assert mdsgap("score", "--run", fresh) == 2
    assert f"run `mdsgap train-sae --run {fresh}` first" in capsys.readouterr().err
    assert mdsgap("report", "--run", fresh) == 2
    assert "mdsgap train-sae" in capsys.readouterr().err
    wide = make_run(tmp_path / "wide", d=24)
    shutil.copytree(scored / "sae", wide / "sae")
    assert mdsgap("score", "--run", wide) == 2
    assert "SAE of 16-dimensional embeddings" in capsys.readouterr().err and not (wide / "scores.csv").exists()
    shard = fresh / shards.SUBDIR / shards.shard_name(1)
    shard.write_bytes(shard.read_bytes()[:-4] + b"oops")
    assert mdsgap("train-sae", "--run", fresh, *SAE_ARGS) == 2
    assert "does not match its checksum" in capsys.readouterr().err and not (fresh / "sae").exists()
    assert mdsgap("score", "--run", scored, "--variants", "ratio,median") == 2
    assert "unknown MDS variant(s) ['median']" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path, capsys):
    args = [*SAE_ARGS[:5], "1000", *SAE_ARGS[6:]]
    whole, killed = make_run(tmp_path / "whole"), make_run(tmp_path / "killed")
    assert mdsgap("train-sae", "--run", whole, *args) == 0
    proc = subprocess.Popen([sys.executable, "-m", "mdsgap.pipeline.cli", "train-sae", "--run", str(killed), *args,
                             "--checkpoint-every", "10"], env=ENV, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 50
    while not list((killed / "sae").glob("checkpoint-*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((killed / "sae").glob("checkpoint-*.pt")) and not (killed / "sae" / "sae.json").exists()
    assert mdsgap("train-sae", "--run", killed, *args, "--checkpoint-every", "10") == 0
    assert "resuming" in capsys.readouterr().err
    a, b = (torch.load(r / "sae" / "final.pt", weights_only=True)["state_dict"] for r in (whole, killed))
    assert all(torch.equal(a[k], b[k]) for k in a), "bit-identical weights"
    assert (whole / "sae" / "curve.csv").read_text() == (killed / "sae" / "curve.csv").read_text()
    for r in (whole, killed):
        assert mdsgap("score", "--run", r) == 0
    assert (whole / "scores.csv").read_text() == (killed / "scores.csv").read_text()


def torchrun(*args) -> subprocess.CompletedProcess:
    # `-m --`: torchrun would otherwise read the stage's --run as an ambiguous abbreviation of its --run-path.
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "--", "mdsgap.pipeline.cli", *map(str, args)]
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_torchrun_score_equals_single_process(scored, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(scored, copy)
    (copy / "scores.csv").unlink()
    torchrun("score", "--run", copy, "--bridge", "--top-m", "5")
    one, two = pd.read_csv(scored / "scores.csv"), pd.read_csv(copy / "scores.csv")
    assert list(one.columns) == list(two.columns)
    for col in one.columns:
        if pd.api.types.is_numeric_dtype(one[col]):
            np.testing.assert_allclose(one[col], two[col], atol=1e-6, equal_nan=True, err_msg=col)
        else:
            assert list(one[col]) == list(two[col]), col
    assert json.loads((copy / "scores.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_torchrun_trains_a_valid_sae_close_to_single_process(scored, tmp_path):
    """Ranks share each global batch (the single-process one) and DDP averages their gradients; each rank's loss is
    normalised by its own half-batch variance, so the result is close to, not equal to, the single-process SAE."""
    run = make_run(tmp_path / "ddp")
    torchrun("train-sae", "--run", run, *SAE_ARGS, "--checkpoint-every", "100")
    one = json.loads((scored / "sae" / "sae.json").read_text())["metrics"]
    two = json.loads((run / "sae" / "sae.json").read_text())
    assert two["world_size"] == 2
    for side in ("image", "text", "both"):
        assert abs(two["metrics"][side]["FVU"] - one[side]["FVU"]) < 0.01, (side, one, two["metrics"])
    model, _ = train.load_sae(run)
    assert torch.allclose(model.W_dec.norm(dim=1), torch.ones(32), atol=1e-5)
    assert mdsgap("score", "--run", run) == 0
