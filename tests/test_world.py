import numpy as np
import pytest

from mdsgap import world


def test_deterministic_for_a_seed_and_split():
    cfg = world.WorldConfig()
    a, b = world.generate(cfg, 50, seed=3), world.generate(cfg, 50, seed=3)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    c = world.generate(cfg, 50, seed=3, split="test")
    assert not np.array_equal(a.images, c.images)


def test_shapes_and_table():
    p = world.generate(world.WorldConfig(resolution=48), 20)
    assert p.images.shape == (20, 48, 48, 3) and p.images.dtype == np.uint8
    for f in world.FACTORS:
        assert set(p.factors[f.name].astype(str)) <= set(f.values)
    assert list(p.factors.caption) == p.captions


def test_captions_name_exactly_the_mentioned_shared_factors():
    p = world.generate(world.WorldConfig(), 300, seed=1)
    for i, cap in enumerate(p.captions):
        row = p.factors.iloc[i]
        assert row["shape"] in cap  # the default world always names the shape
        for name in ("colour", "size"):
            assert (row[name] in cap.split()) == bool(row[f"mentioned_{name}"])
        assert (row["position"] in cap) == bool(row["mentioned_position"])
        if row["tone"] != "none":
            assert row["tone"] in cap


def test_unnamed_shape_reads_shape():
    p = world.generate(world.WorldConfig(mention={"shape": 0.0, "colour": 1.0}), 50)
    assert all(c.endswith("shape") or " shape " in c for c in p.captions)
    assert not p.factors.mentioned_shape.any()


def test_vision_only_factors_never_in_captions():
    p = world.generate(world.WorldConfig(), 300, seed=2)
    words = set(" ".join(p.captions).split())
    for name in world.VISION_ONLY:
        assert not (set(world.FACTOR_BY_NAME[name].values) - {"none"}) & words


def test_language_only_factors_do_not_change_the_image():
    """Two samples that differ only in tone and template render identically (same seeds and codes)."""
    rng = lambda: np.random.default_rng(0)
    codes = world.sample_factors(world.WorldConfig(), 10, np.random.default_rng(1))
    other = dict(codes, tone=(codes["tone"] + 1) % 4, template=(codes["template"] + 1) % 4)
    a = world.render(codes, 32, 4.0, 0.5, rng())
    b = world.render(other, 32, 4.0, 0.5, rng())
    assert np.array_equal(a, b)


def test_vision_only_factors_change_the_image():
    rng = lambda: np.random.default_rng(0)
    codes = world.sample_factors(world.WorldConfig(), 10, np.random.default_rng(1))
    for name in world.VISION_ONLY:
        k = len(world.FACTOR_BY_NAME[name].values)
        other = dict(codes, **{name: (codes[name] + 1) % k})
        assert not np.array_equal(world.render(codes, 32, 0.0, 0.5, rng()), world.render(other, 32, 0.0, 0.5, rng()))


def test_mention_probability_is_respected():
    p = world.generate(world.WorldConfig(mention={"shape": 1.0, "colour": 0.25, "size": 0.0, "position": 1.0}), 4000)
    assert abs(p.factors.mentioned_colour.mean() - 0.25) < 0.03
    assert not p.factors.mentioned_size.any() and p.factors.mentioned_position.all()


def test_correlation_is_applied():
    corr = world.Correlation("colour", "red", "shape", "circle", 1.0)
    p = world.generate(world.WorldConfig(correlations=(corr,)), 2000)
    red = p.factors.colour == "red"
    assert (p.factors["shape"][red] == "circle").all()
    assert (p.factors["shape"][~red] == "circle").mean() < 0.4
    # dicts (as from YAML) are accepted too
    assert world.WorldConfig(correlations=({"if_factor": "colour", "if_value": "red", "then_factor": "shape",
                                            "then_value": "circle", "prob": 0.5},)).correlations[0].prob == 0.5


def test_bad_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="not a shared factor"):
        world.WorldConfig(mention={"texture": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        world.WorldConfig(mention={"colour": 1.5})
    with pytest.raises(ValueError, match="unknown value"):
        world.Correlation("colour", "pink", "shape", "circle", 0.5)
    with pytest.raises(TypeError, match="resolution must be int"):
        world.WorldConfig(resolution="32")


def test_articles_agree():
    assert world.caption({"tone": "none", "template": "a {}", "shape": "circle", "colour": "orange"},
                         {"colour": True, "shape": True}) == "an orange circle"
