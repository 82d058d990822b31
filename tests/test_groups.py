import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap import world
from mdsgap.attribution import dominance as D
from mdsgap.clip import datasets, evaluation, models, training
from mdsgap.edit import groups
from mdsgap.features import sae


def test_study_worlds_name_the_group_and_tie_it_in_training_only():
    study = groups.GroupStudyConfig()
    assert study.groups == ("dark", "light")
    assert study.balanced_world().p("outline") == 1.0 and not study.balanced_world().correlations
    train = world.generate(study.training_world(), 2000, seed=0)
    light = train.factors.outline == "light"
    assert (train.factors["size"][light] == "large").all()
    assert 0.4 < (train.factors["size"][~light] == "large").mean() < 0.6
    assert "rim" in train.captions[0]
    cfg = study.train_config(training.TrainConfig(steps=10), seed=3)
    assert cfg.steps == study.finetune_steps and cfg.seed == 3 and cfg.init["steps"] == 10


@pytest.mark.parametrize("kwargs, match", [(dict(factor="tone"), "every image shows"),
                                           (dict(correlate="outline"), "another factor"),
                                           (dict(confounded="pink"), "unknown value"),
                                           (dict(strength=1.5), r"\[0, 1\]"),
                                           (dict(finetune_steps=0), "at least 1")])
def test_study_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        groups.GroupStudyConfig(**kwargs)


def test_outline_prompts_exist_once_captions_name_it():
    with pytest.raises(ValueError, match="not 'outline'"):
        evaluation.prompts("outline", "dark")
    got = evaluation.prompts("outline", "dark", cfg=groups.GroupStudyConfig().balanced_world())
    assert all("with a dark rim" in p for p in got) and len(got) == len(set(got))
    assert evaluation.readable() == world.ZERO_SHOT


def test_readings_margin_and_gap_on_constructed_embeddings():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 0.2], [0.2, 1.0], [1.0, 0.5], [0.9, 0.1]])
    r = groups.readings(x, classes, [0, 1, 1, 1])
    assert list(r.correct) == [True, True, False, False]
    cos = x / x.norm(dim=1, keepdim=True)
    assert r.margin[0] == pytest.approx(float(cos[0, 0] - cos[0, 1]), abs=1e-6)
    assert groups.accuracy_gap(r, confounded=1) == pytest.approx(1.0 - 1 / 3)
    assert list(groups.by_group(r, ["a", "b"]).accuracy) == pytest.approx([1.0, 1 / 3])
    with pytest.raises(ValueError, match="one group per image"):
        groups.readings(x, classes, [0, 1])


def test_removal_readout_keeps_everything_when_nothing_is_removed_and_reads_the_edit():
    from mdsgap.edit import control, editing

    torch.manual_seed(0)
    model = sae.SparseAutoencoder(4, sae.SAEConfig(n_latents=12, activation=sae.TopK(3)))
    x, classes = torch.randn(40, 4), torch.randn(2, 4)
    g = np.arange(40) % 2
    run = groups.removal_readout(model, x, classes, g, confounded=1, names=["a", "b"])
    plain = run([])
    for name in "ab":   # a share of the plain margin: 1 where that margin is positive, undefined otherwise
        assert plain[f"kept {name}"] == pytest.approx(1.0) if plain[f"margin {name}"] > 1e-6 else np.isnan(plain[f"kept {name}"])
    r = groups.readings(editing.without_latents(model, x, [0, 5]), editing.without_latents(model, classes, [0, 5]), g)
    got = run([0, 5])
    assert got["gap"] == pytest.approx(groups.accuracy_gap(r, 1))
    assert got["accuracy a"] == pytest.approx(r.correct[r.group == 0].mean())
    labels = np.array([D.IMGD] * 3 + [D.TXTD] * 2 + [D.CMD] + [D.RARE] * 6, dtype=object)
    carry = control.carried(model.encode(x), model.encode(x))
    table = control.compare(run, labels, carry, control.ControlConfig(n_random=4), pool=np.arange(12))
    every = {"gap", "accuracy a", "accuracy b", "margin a", "margin b", "kept a", "kept b"}
    assert every - {"kept a", "kept b"} <= set(table.readout) <= every   # an undefined 'kept' is left out
    assert np.isnan(groups.removal_readout(model, x, classes, g, None, ["a", "b"])([])["gap"])


def test_prompt_classes_and_group_codes_on_a_csv_the_test_makes(tmp_path):
    from PIL import Image

    pairs = world.generate(groups.GroupStudyConfig().balanced_world(), 8, seed=0)
    (tmp_path / "img").mkdir()
    rows = ["filepath\ttitle\tgroup"]
    for i, (im, cap) in enumerate(zip(pairs.images, pairs.captions)):
        Image.fromarray(im).save(tmp_path / "img" / f"{i}.png")
        rows.append(f"img/{i}.png\t{cap}\t{pairs.factors.outline[i]}")
    (tmp_path / "g.tsv").write_text("\n".join(rows) + "\n")
    data = datasets.load_csv(tmp_path / "g.tsv", sep="\t", keep=("group",))
    assert data.columns["group"] == list(pairs.factors.outline.astype(str))
    assert data.subset([1, 2]).columns["group"] == data.columns["group"][1:3]
    clip = models.create_clip("mdsgap-tiny")
    classes, names = groups.prompt_classes(clip, {"dark": ["a shape with a dark rim"], "light": ["a light rim"]})
    assert classes.shape == (2, 16) and names == ["dark", "light"]
    assert list(groups.group_codes(data.columns["group"], names)) == list(pairs.factors.outline.cat.codes)
    with pytest.raises(ValueError, match="no prompts"):
        groups.group_codes(["dark", "grey"], names)
    with pytest.raises(ValueError, match="at least two groups"):
        groups.prompt_classes(clip, {"dark": ["x"]})
    with pytest.raises(datasets.DatasetError, match="missing column"):
        datasets.load_csv(tmp_path / "g.tsv", sep="\t", keep=("gender",))
