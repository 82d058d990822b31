import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap import world
from mdsgap.attribution import dominance as D
from mdsgap.clip import models
from mdsgap.edit import adversarial as A
from mdsgap.features import sae


@pytest.fixture(scope="module")
def clip():
    return models.create_clip("mdsgap-tiny", seed=0)


def test_to_input_matches_the_models_own_preprocessing(clip):
    images = world.generate(world.WorldConfig(), 4, seed=0).images
    assert torch.allclose(A.to_input(clip, A.pixels(images)), clip.image_tensor(images), atol=1e-6)


def test_pgd_stays_in_its_budget_and_lowers_the_loss(clip):
    images = world.generate(world.WorldConfig(), 6, seed=1).images
    x = A.pixels(images)
    target = clip.encode_texts(["a red circle"] * 6)
    loss = A.embedding_objective(target)
    before = loss(clip.encode_images(images)).mean()
    adv = A.pgd(clip, x, loss, eps=8 / 255, steps=5)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        after = loss(clip.model.encode_image(A.to_input(clip, adv))).mean()
    assert after < before
    assert torch.equal(A.pgd(clip, x, loss, eps=0.0), x)  # no budget, no change
    assert torch.equal(adv, A.pgd(clip, x, loss, eps=8 / 255, steps=5))  # deterministic
    with pytest.raises(ValueError, match="eps"):
        A.pgd(clip, x, loss, eps=-1)


def test_pgd_many_gives_each_attack_what_it_gets_alone(clip):
    images = world.generate(world.WorldConfig(), 5, seed=2).images
    x = A.pixels(images)
    near = A.embedding_objective(clip.encode_texts(["a red circle"] * 5))
    far = A.embedding_objective(-clip.encode_texts(["a blue square"] * 5))
    attacks = [(near, 4 / 255), (far, 8 / 255), (near, 0.0)]
    together = A.pgd_many(clip, x, attacks, steps=4)
    assert all(torch.equal(a, _plain_pgd(clip, x, loss, eps, 4)) for a, (loss, eps) in zip(together, attacks))
    assert not torch.allclose(together[0], together[1])  # the copies did not share one attack


def _plain_pgd(clip, x0, loss, eps, steps):
    """PGD written out for one attack: the reference `pgd_many` must reproduce."""
    x = x0.clone()
    for _ in range(steps if eps > 0 else 0):
        x.requires_grad_(True)
        grad, = torch.autograd.grad(loss(clip.model.encode_image(A.to_input(clip, x))).sum(), x)
        with torch.no_grad():
            x = x - 2.5 * eps / steps * grad.sign()
            x = (x0 + (x - x0).clamp(-eps, eps)).clamp(0, 1)
    return x.detach()


def test_target_rows_pick_another_image_with_the_goal_label_and_fitted_images_are_square():
    truth, goal = np.array([0, 0, 1, 1, 2]), np.array([1, 2, 0, 0, 1])
    rows = A.target_rows(truth, goal, seed=0)
    assert (truth[rows] == goal).all() and (rows != np.arange(5)).all()
    assert (rows == A.target_rows(truth, goal, seed=0)).all()
    with pytest.raises(ValueError, match="n_attack"):
        A.target_rows(np.array([0, 1]), np.array([1, 2]))
    from PIL import Image

    images = [Image.new("RGB", (40, 20), "red"), Image.new("L", (10, 30))]
    fitted = A.fitted_images(images, 16)
    assert fitted.shape == (2, 16, 16, 3) and fitted.dtype == np.uint8 and fitted[0, 0, 0, 0] == 255


def test_feature_objective_reads_pre_activations_of_the_chosen_latents_only():
    torch.manual_seed(0)
    model = sae.SparseAutoencoder(4, sae.SAEConfig(n_latents=10, activation=sae.TopK(2)))
    e, t = torch.randn(3, 4), torch.randn(1, 4)
    loss = A.feature_objective(model, [1, 4], t)
    v, g = A.latent_values(model, e), A.latent_values(model, t)
    assert torch.allclose(loss(e), ((v[:, [1, 4]] - g[:, [1, 4]]) ** 2).sum(1))
    assert torch.allclose(loss(t), torch.zeros(1))
    with pytest.raises(ValueError, match="at least one latent"):
        A.feature_objective(model, [], t)


def test_objectives_cover_classes_random_sets_and_the_reference():
    torch.manual_seed(0)
    model = sae.SparseAutoencoder(4, sae.SAEConfig(n_latents=10, activation=sae.TopK(2)))
    from mdsgap.edit import control

    labels = np.array([D.IMGD] * 3 + [D.CMD] * 2 + [D.TXTD] * 4 + [D.RARE], dtype=object)
    labels[5:9] = D.CMD
    carry = control.carried(torch.rand(20, 10), torch.rand(20, 10))
    got, overlaps = A.objectives(model, {"L": labels}, torch.randn(5, 4), carry, n_random=2)
    assert set(overlaps) == {("L", D.IMGD)} and 0 <= overlaps[("L", D.IMGD)] <= 1
    assert ("-", "whole embedding", "reference") in got and ("L", D.IMGD, "class") in got
    assert ("L", D.TXTD, "class") not in got  # an empty class has no attack
    assert ("L", D.CMD, "class") not in got   # 6 members, 3 latents outside: no control, no attack
    assert [k[1] for k in got if k[2] == "random"] == [f"random, {D.IMGD}-matched #0", f"random, {D.IMGD}-matched #1"]


def test_targets_never_equal_the_truth_and_cover_the_other_values():
    truth = np.arange(600) % 6
    goal = A.targets(truth, 6, seed=0)
    assert (goal != truth).all() and set(goal[truth == 0]) == {1, 2, 3, 4, 5}


def test_summarise_pools_random_sets_and_cheapest_compares_with_them():
    rows = []
    for s in range(3):
        for b in (2, 8):
            rows.append({"labelling": "-", "set": "whole embedding", "kind": "reference", "budget": b,
                         "success": 0.9, "seed": s})
            rows.append({"labelling": "L", "set": D.CMD, "kind": "class", "budget": b, "success": 0.5, "seed": s})
            rows.append({"labelling": "L", "set": D.IMGD, "kind": "class", "budget": b, "success": 0.1, "seed": s})
            for k in range(9):   # enough random sets for a per-seed p-value of 0.05
                rows.append({"labelling": "L", "set": f"random, {D.CMD}-matched #{k}", "kind": "random",
                             "budget": b, "success": 0.1 * (k % 2), "seed": s})
    summary = A.summarise(pd.DataFrame(rows))
    pooled = summary[summary.attack == f"random, {D.CMD}-matched"]
    assert len(pooled) == 2 and pooled.value.tolist() == pytest.approx([0.4 / 9, 0.4 / 9])
    overlaps = {(s, "L", c): 0.0 for s in range(3) for c in (D.CMD, D.IMGD)}
    verdicts = A.against_random(pd.DataFrame(rows), overlaps)
    cmd = verdicts[verdicts["class"] == D.CMD].set_index("readout")
    assert (cmd.verdict == "above").all() and cmd.loc[2, "value"] == pytest.approx(0.5 - 0.4 / 9)
    got = A.cheapest(summary, verdicts, "L")
    few = pd.DataFrame([r for r in rows if "#" not in r["set"] or r["set"].endswith(("#0", "#1"))])
    assert (A.against_random(few, overlaps).verdict == "undecidable").all()   # 2 sets, 3 seeds: p >= 0.094
    assert got["class"] == D.CMD and got["random"] == pytest.approx(0.4 / 9) and got["budgets above random"] == 1.0
    assert got["reference"] == pytest.approx(0.9) and got["value"] == pytest.approx(0.5)
