import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap import world
from mdsgap.clip import evaluation


def test_prompts_name_only_the_factor_and_the_shape():
    ps = evaluation.prompts("colour", "red")
    assert len(ps) == 4 * evaluation.MAX_COMBOS and all("red" in p for p in ps)  # a sample of the grid
    assert len(set(ps)) == len(ps) and all(p.split()[-1] in world.FACTOR_BY_NAME["season"].values
                                           or p.endswith("here") for p in ps)
    assert not any(w in p for p in ps for w in ("small", "large", "striped", "top", "dim"))  # nothing else
    words = {w for p in ps for w in p.split()}
    always = ("shape", "shade", "tint", "tone", "place", "season")  # named by every caption: all values
    assert all(set(world.FACTOR_BY_NAME[f].values) <= words for f in always)
    blue = evaluation.prompts("colour", "blue")  # the same sample for every value of a factor
    assert [p.replace("red", "blue") for p in ps] == blue
    assert evaluation.prompts("colour", "red") == ps  # drawn once per factor: the same every call
    small = evaluation.prompts("texture", "striped", cfg=world.WorldConfig(
        mention={n: 0.5 for n in ("colour", "shade", "tint", "place", "season")}))
    with pytest.raises(ValueError, match="every image shows"):
        evaluation.prompts("tone", "lovely")
    assert len(small) == 4 * 4 * 4 * 2  # below the cap: the whole grid (templates x shapes x tones x times)
    assert small[0] == "a lovely circle on a striped background by day"


def test_recall_at_k_on_constructed_ranks():
    keys = torch.eye(4)
    query = torch.tensor([[1.0, 0, 0, 0], [1.0, 0.5, 0, 0], [0, 0, 0, 1.0], [0, 0, 0.1, 1.0]])
    # queries 0 and 3 rank their own key first; queries 1 and 2 rank it second
    r = evaluation.recall_at_k(query, keys, ks=(1, 2))
    assert r[1] == pytest.approx(0.5) and r[2] == pytest.approx(1.0)


def test_zero_shot_predict_picks_the_closest_class():
    classes = torch.eye(3)
    emb = torch.tensor([[0.1, 0.9, 0.0], [2.0, 0.0, 0.1]])
    assert evaluation.zero_shot_predict(emb, classes).tolist() == [1, 0]


def test_consistency_checks_only_named_factors():
    p = world.generate(world.WorldConfig(), 200, seed=0)
    i = np.arange(200)
    assert evaluation.consistent(p.factors, i, i).all()  # a caption is always true of its own image
    f = p.factors.copy()
    j = np.roll(i, 1)
    ok = evaluation.consistent(f, i, j)
    for a, b, k in zip(i, j, ok):
        expect = all(not f[f"mentioned_{n}"][b] or not f[f"shown_{n}"][a] or f[n][b] == f[n][a]
                     for n in world.NAMEABLE)
        assert k == expect


def test_retrieval_table_has_chance_beside_each_score():
    x = torch.randn(50, 8)
    t = evaluation.retrieval(x, x.clone())
    assert (t.query("metric == 'recall@1'").value == 1.0).all()
    assert t.query("metric == 'recall@5'").chance.iloc[0] == pytest.approx(5 / 50)


def test_prompts_in_chosen_templates_and_unknown_template_named():
    from mdsgap.clip import evaluation
    one = evaluation.prompts("colour", "red", templates=["a {}"])
    assert all(p.startswith("a ") and "red" in p for p in one) and len(one) == evaluation.MAX_COMBOS
    with pytest.raises(ValueError, match="Unknown caption template"):
        evaluation.prompts("colour", "red", templates=["photograph of {}"])
