import numpy as np
import pytest
import torch

from mdsgap.attribution import dominance as D
from mdsgap import world
from mdsgap.clip import evaluation
from mdsgap.edit import editing
from mdsgap.features import sae


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


def test_removal_readout_equals_removing_by_hand_and_feeds_the_control():
    from mdsgap.edit import control

    p = world.generate(world.WorldConfig(), 60, seed=0)
    m = _sae(d=6)
    x, y = torch.randn(60, 6), torch.randn(60, 6)
    classes = {name: torch.randn(len(world.FACTOR_BY_NAME[name].values), 6) for name in world.ZERO_SHOT}
    run = editing.removal_readout(m, x, y, classes, p.factors)
    gone = [0, 3]
    edit = lambda e: editing.without_latents(m, e, gone)
    by_hand = editing.downstream(edit(x), edit(y), {k: edit(v) for k, v in classes.items()}, p.factors)
    assert run(gone) == pytest.approx(by_hand)
    r = evaluation.retrieval(edit(x), edit(y), p.factors, ks=(1,)).set_index(["direction", "metric"]).value
    assert by_hand["recall@1"] == pytest.approx(r[("image→text", "recall@1")])
    assert by_hand["consistent@1"] == pytest.approx(r[("image→text", "consistent@1")])
    labels = np.array([D.IMGD] * 4 + [D.TXTD] * 3 + [D.CMD] * 2 + [D.DEAD] * 7, dtype=object)
    carry = control.carried(m.encode(x), m.encode(y))
    got = control.compare(run, labels, carry, control.ControlConfig(n_random=5), pool=np.arange(16))
    assert set(got["class"]) == {D.IMGD, D.TXTD, D.CMD} and set(got.readout) == set(editing.METRICS)


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


def test_drawn_edits_draw_each_class_and_its_matched_sets_and_confirmed_compares_them():
    import pandas as pd

    from mdsgap.edit import control

    m = _sae(d=6)
    e = torch.randn(12, 6)
    labels = np.array([D.IMGD] * 2 + [D.CMD] * 2 + [D.TXTD] * 2 + [D.CMD] * 10, dtype=object)
    carry = control.carried(m.encode(torch.nn.functional.normalize(e, dim=-1)), torch.rand(12, 16))
    plain = pd.DataFrame({"shape": ["a"] * 12})
    calls = []

    def draw(edited, seed):   # a fake drawing: reads "b" wherever the edit moved the embedding
        calls.append(seed)
        moved = (edited - editing.without_latents(m, e)).norm(dim=1) > 1e-6
        return pd.DataFrame({"shape": np.where(moved.numpy(), "b", "a")})

    cfg = control.ControlConfig(n_random=2, seed=5, neighbours=3)
    rows = editing.drawn_edits(m, e, labels, carry, plain, draw, cfg, seed=5, labelling="L")
    got = pd.DataFrame(rows)
    assert len(got) == 2 * 3 and set(calls) == {5} and (got.seed == 5).all()
    assert D.CMD not in set(got["class"])   # 12 members, 4 latents outside: no control, so no edit
    assert list(got[got["class"] == D.IMGD].kind) == ["class", "random", "random"]
    table = pd.DataFrame([{"labelling": "L", "class": "CMD", "kind": k, "draw": d, "seed": s, "shape": v}
                          for s in range(2) for k, d, v in (("class", 0, 0.6), ("random", 1, 0.2),
                                                            ("random", 2, 0.7 if s else 0.1))])
    c = editing.confirmed(table, ["shape"]).iloc[0]
    assert c["drawn change"] == pytest.approx(0.6) and c["drawn random (max)"] == pytest.approx(0.4)
    assert c.confirmed


def test_against_prediction_splits_the_moves():
    import pandas as pd

    moved = pd.DataFrame({"labelling": ["m"] * 4, "class": ["ImgD", "ImgD", "CMD", "CMD"],
                          "factor": ["size", "shape", "shape", "colour"],
                          "verdict": ["above", "above", "within", "above"]})
    got = editing.against_prediction(moved, {"size": "ImgD", "shape": "CMD", "colour": "CMD"}).iloc[0]
    assert got["as predicted"] == "colour (CMD), size (ImgD)"
    assert got["not predicted"] == "shape (ImgD)" and got["missing"] == "shape (CMD)"
    moved["verdict"] = "below"
    assert editing.against_prediction(moved, {"size": "ImgD"}).iloc[0]["as predicted"] == "nothing"


def test_class_versions_list_nothing_removed_then_each_nonempty_class():
    m, e = _sae(), torch.randn(5, 8)
    labels = np.array(["ImgD"] * 4 + ["CMD"] * 2 + ["none"] * 10)
    got = editing.class_versions(m, e, labels)
    assert [c for c, _, _ in got] == ["none", "ImgD", "CMD"]
    assert torch.allclose(got[0][2], editing.without_latents(m, e))
    assert list(got[2][1]) == [4, 5] and torch.allclose(got[2][2], editing.without_latents(m, e, [4, 5]))


def test_probe_readout_reads_no_change_for_nothing_and_matches_the_probe_on_edits():
    p = world.generate(world.WorldConfig(), 200, seed=1)
    rng = torch.Generator().manual_seed(0)
    e = torch.randn(200, 8, generator=rng)
    e[:, 0] += 3 * torch.tensor(np.array(p.factors["size"].cat.codes), dtype=torch.float32)
    probes = editing.factor_probes(e, p.factors, ["size", "colour"])
    w, b = probes["size"]
    codes = (torch.nn.functional.normalize(e, dim=-1) @ w + b).argmax(1).numpy()
    assert (codes == p.factors["size"].cat.codes.to_numpy()).mean() > 0.9   # the probe reads size
    m = _sae(d=8)
    run = editing.probe_readout(m, e, probes)
    assert run([]) == {"size": 0.0, "colour": 0.0}
    edited = torch.nn.functional.normalize(editing.without_latents(m, e, [1, 2]), dim=-1)
    plain = torch.nn.functional.normalize(editing.without_latents(m, e), dim=-1)
    want = ((edited @ w + b).argmax(1) != (plain @ w + b).argmax(1)).float().mean()
    assert run([1, 2])["size"] == pytest.approx(float(want))


def test_specificity_cancels_a_mass_effect_and_finds_a_specific_one():
    import pandas as pd

    rows = [{"seed": s, "labelling": "L", "class": c, "readout": f, "random mean": 0.1,
             "change": 0.1 + (0.3 if c == "ImgD" else 0.2) + (0.4 if (c, f) == ("CMD", "shape") else 0.0)
             + 0.01 * s}
            for s in range(3) for c in ("ImgD", "CMD", "TxtD") for f in ("size", "shape", "colour")]
    got = editing.specificity(pd.DataFrame(rows), {"size": "ImgD", "shape": "CMD", "colour": "CMD"})
    got = got.set_index("class")
    assert got.loc["ImgD", "value"] == pytest.approx(0.0)            # moves everything alike: mass
    assert got.loc["CMD", "value"] == pytest.approx(0.2)             # shape +0.4 beyond colour and size
    assert got.loc["CMD", "predicted"] == "shape, colour" and np.isnan(got.loc["TxtD", "value"])


def test_factor_probes_say_which_labels_are_too_few_before_fitting():
    import pandas as pd

    e = torch.randn(5, 8)
    one = pd.DataFrame({"label": pd.Categorical(["a"] * 5)})
    with pytest.raises(ValueError, match=r"probe of 'label' needs two values or more.*\{'a': 5\}"):
        editing.factor_probes(e, one, ["label"])
    thin = pd.DataFrame({"label": pd.Categorical(["a", "a", "b", "b", "c"])})
    with pytest.raises(ValueError, match="use more rows"):
        editing.factor_probes(e, thin, ["label"])
