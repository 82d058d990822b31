import numpy as np
import pytest
import torch

from mdsgap import dominance as D
from mdsgap import editing, evaluation, sae, world


def _sae(d=8, n=16):
    torch.manual_seed(0)
    return sae.SparseAutoencoder(d, sae.SAEConfig(n_latents=n, activation=sae.TopK(3)))


def test_removing_nothing_is_the_reconstruction_and_removing_all_leaves_the_bias():
    m, e = _sae(), torch.randn(20, 8)
    _, recon = m(torch.nn.functional.normalize(e, dim=-1))
    assert torch.allclose(editing.without_latents(m, e), recon)
    assert torch.allclose(editing.without_latents(m, e, range(16)), m.b_pre.expand(20, 8))


def test_removed_latents_do_not_contribute():
    m, e = _sae(), torch.randn(20, 8)
    z = m.encode(torch.nn.functional.normalize(e, dim=-1))
    drop = [int(z[0].argmax())]
    edited = editing.without_latents(m, e, drop)
    z[:, drop] = 0
    assert torch.allclose(edited, m.decode(z))


def test_scaled_latents_amplify_only_the_named_latents():
    m, e = _sae(), torch.randn(20, 8)
    z = m.encode(torch.nn.functional.normalize(e, dim=-1))
    keep = [int(z[0].argmax())]
    assert torch.allclose(editing.scaled_latents(m, e, keep, 1.0), m.decode(z))
    z[:, keep] *= 3
    assert torch.allclose(editing.scaled_latents(m, e, keep, 3.0), m.decode(z))


def test_class_removal_rows_and_random_controls():
    p = world.generate(world.WorldConfig(), 60, seed=0)
    m = _sae(d=6)
    x, y = torch.randn(60, 6), torch.randn(60, 6)
    classes = {name: torch.randn(len(world.FACTOR_BY_NAME[name].values), 6) for name in world.ZERO_SHOT}
    labels = np.array([D.IMGD] * 4 + [D.TXTD] * 3 + [D.CMD] * 2 + [D.DEAD] * 7, dtype=object)
    out = editing.class_removal(m, x, y, classes, p.factors, labels, n_random=5)
    assert list(out[out.kind == "class"].removed) == [D.IMGD, D.TXTD, D.CMD]
    assert (out[out.kind == "random"].groupby("removed").size() == 5).all()
    assert set(out[out.kind == "random"]["size"]) == {4, 3, 2}
    assert out[["zero-shot", "recall@1", "consistent@1"]].apply(lambda c: c.between(0, 1)).all().all()


def test_zero_shot_split_matches_the_whole():
    class FakeClip:
        def encode_texts(self, texts):
            g = torch.Generator().manual_seed(len(texts))
            return torch.randn(len(texts), 4, generator=g)
    p = world.generate(world.WorldConfig(), 30, seed=0)
    img = torch.randn(30, 4)
    a = evaluation.zero_shot(FakeClip(), img, p.factors)
    b = evaluation.zero_shot_scores(img, evaluation.zero_shot_classes(FakeClip()), p.factors)
    assert a.equals(b)


def test_against_random_reports_drops_from_the_reconstruction():
    import pandas as pd
    removal = pd.DataFrame([
        {"removed": "nothing", "kind": "none", "size": 0, "zero-shot": 0.9, "recall@1": 0.5, "consistent@1": 0.8},
        {"removed": D.CMD, "kind": "class", "size": 2, "zero-shot": 0.8, "recall@1": 0.5, "consistent@1": 0.8},
        {"removed": "random, CMD-sized", "kind": "random", "size": 2, "zero-shot": 0.7, "recall@1": 0.4, "consistent@1": 0.8},
        {"removed": "random, CMD-sized", "kind": "random", "size": 2, "zero-shot": 0.5, "recall@1": 0.4, "consistent@1": 0.8}])
    t = editing.against_random(removal).set_index("metric")
    assert t.loc["zero-shot", "drop, class"] == pytest.approx(0.1)
    assert t.loc["zero-shot", "drop, random (mean)"] == pytest.approx(0.3)
    assert t.loc["zero-shot", "share of random sets hurting less"] == 0.0
    assert t.loc["recall@1", "share of random sets hurting less"] == 0.0 and t.loc["recall@1", "drop, class"] == 0.0


def test_removal_sets_give_each_class_and_random_sets_of_its_size():
    from mdsgap import dominance as D

    labels = np.array([D.IMGD] * 3 + [D.CMD] + [D.RARE] * 4, dtype=object)
    sets = editing.removal_sets(labels, n_random=2, seed=0)
    assert [(r, k, d) for r, k, d, _ in sets] == [
        (D.IMGD, "class", 0), (f"random, {D.IMGD}-sized", "random", 0), (f"random, {D.IMGD}-sized", "random", 1),
        (D.CMD, "class", 0), (f"random, {D.CMD}-sized", "random", 0), (f"random, {D.CMD}-sized", "random", 1)]
    assert all(len(l) == (3 if "ImgD" in r else 1) and set(l) <= {0, 1, 2, 3} for r, _, _, l in sets)


def test_changes_against_random_flags_a_class_above_its_random_range():
    import pandas as pd

    rows = [{"seed": s, "labelling": "L", "removed": "CMD", "kind": "class", "shape": 0.6, "colour": 0.1}
            for s in range(3)]
    rows += [{"seed": s, "labelling": "L", "removed": "random, CMD-sized", "kind": "random", "shape": 0.1 + 0.01 * k,
              "colour": 0.1} for s in range(3) for k in range(4)]
    got = editing.changes_against_random(pd.DataFrame(rows), ["shape", "colour"]).set_index("factor")
    assert got.loc["shape", "above random"] and not got.loc["colour", "above random"]
    assert got.loc["shape", "change"] == pytest.approx(0.6)
    # a mean above the range whose interval still reaches into it is not a class effect
    rows = [{"seed": s, "labelling": "L", "removed": "CMD", "kind": "class", "shape": [0, 0, 0.03][s]}
            for s in range(3)]
    rows += [{"seed": s, "labelling": "L", "removed": "random, CMD-sized", "kind": "random", "shape": 0.0}
             for s in range(3)]
    got = editing.changes_against_random(pd.DataFrame(rows), ["shape"]).set_index("factor")
    assert got.loc["shape", "change"] > 0 and not got.loc["shape", "above random"]


def test_against_prediction_splits_the_moves():
    import pandas as pd

    moved = pd.DataFrame({"labelling": ["m"] * 4, "class": ["ImgD", "ImgD", "CMD", "CMD"],
                          "factor": ["size", "shape", "shape", "colour"],
                          "above random": [True, True, False, True]})
    got = editing.against_prediction(moved, {"size": "ImgD", "shape": "CMD", "colour": "CMD"}).iloc[0]
    assert got["as predicted"] == "colour (CMD), size (ImgD)"
    assert got["not predicted"] == "shape (ImgD)" and got["missing"] == "shape (CMD)"
    moved["above random"] = False
    assert editing.against_prediction(moved, {"size": "ImgD"}).iloc[0]["as predicted"] == "nothing"


def test_class_versions_list_nothing_removed_then_each_nonempty_class():
    m, e = _sae(), torch.randn(5, 8)
    labels = np.array(["ImgD"] * 4 + ["CMD"] * 2 + ["none"] * 10)
    got = editing.class_versions(m, e, labels)
    assert [c for c, _, _ in got] == ["none", "ImgD", "CMD"]
    assert torch.allclose(got[0][2], editing.without_latents(m, e))
    assert list(got[2][1]) == [4, 5] and torch.allclose(got[2][2], editing.without_latents(m, e, [4, 5]))
