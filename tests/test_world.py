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


def test_captions_name_exactly_the_mentioned_factors():
    p = world.generate(world.WorldConfig(), 300, seed=1)
    for i, cap in enumerate(p.captions):
        row = p.factors.iloc[i]
        assert row["shape"] in cap and row["colour"] in cap.split()  # the default world always names them
        for name in ("size", "shade", "tint", "texture", "backdrop", "tone", "time", "outline", "place",
                     "season"):
            assert (row[name] in cap.split()) == bool(row[f"mentioned_{name}"])
        assert (row["position"] in cap) == bool(row["mentioned_position"])
        assert ("background" in cap) == bool(row["mentioned_texture"] or row["mentioned_backdrop"])


def test_default_world_has_every_kind():
    kinds = world.factor_table().groupby("kind").factor.apply(list)
    assert set(kinds.index) == set(world.KINDS)
    for k in ("cross-modal", "vision-dominant", "language-dominant"):
        assert len(kinds[k]) >= 4 and world.of_kind(k) == tuple(kinds[k])  # issue 19: 4 factors per class
    assert world.kind_of(1, 0.25) == "vision-dominant" and world.kind_of(0.25, 1) == "language-dominant"
    assert world.ideal_share(1, 0.25) == pytest.approx(0.8) and np.isnan(world.ideal_share(0, 0))
    with pytest.raises(ValueError, match="q = p = 0"):
        world.kind_of(0, 0)


def test_default_captions_fit_the_context():
    import open_clip
    tok = open_clip.get_tokenizer("ViT-B-32")
    every = world.WorldConfig(mention={name: 1.0 for name in world.NAMEABLE})  # the longest captions
    p = world.generate(every, 500, seed=0)
    assert max(len(tok.encode(c)) for c in p.captions) + 2 <= 31  # the small models' context_length


def test_unnamed_shape_reads_shape():
    p = world.generate(world.WorldConfig(mention={"shape": 0.0, "colour": 1.0}), 50)
    assert all(c.endswith("shape") or " shape " in c for c in p.captions)
    assert not p.factors.mentioned_shape.any()


def test_never_named_factors_stay_out_of_captions():
    p = world.generate(world.WorldConfig(), 300, seed=2)
    words = set(" ".join(p.captions).split())
    assert not {"dark", "light", "rim"} & words  # the outline: p = 0


def test_hidden_cues_and_the_template_do_not_change_the_image():
    """Samples that differ only in template, and in the cues (tone, time, place, season) where those are
    not shown, render identically (same seeds and codes); each cue, shown, changes the image."""
    rng = lambda: np.random.default_rng(0)
    codes = world.sample_factors(world.WorldConfig(), 10, np.random.default_rng(1))
    size = {f.name: len(f.values) for f in world.FACTORS}
    other = dict(codes, template=(codes["template"] + 1) % 4,
                 **{c: (codes[c] + 1) % size[c] for c in world.CUES})
    hidden = {c: np.zeros(10, bool) for c in world.CUES}
    assert np.array_equal(world.render(codes, 32, 4.0, 0.5, rng(), hidden), world.render(other, 32, 4.0, 0.5, rng()))
    for cue in world.CUES:
        shown = {c: np.arange(10) < (10 if c == cue else 0) for c in world.CUES}
        one = dict(codes, **{cue: other[cue]})
        assert not np.array_equal(world.render(codes, 32, 4.0, 0.5, rng(), shown),
                                  world.render(one, 32, 4.0, 0.5, rng(), shown)), cue


def test_visible_factors_change_the_image():
    rng = lambda: np.random.default_rng(0)
    codes = world.sample_factors(world.WorldConfig(), 10, np.random.default_rng(1))
    for name in world.VISIBLE:
        k = len(world.FACTOR_BY_NAME[name].values)
        other = dict(codes, **{name: (codes[name] + 1) % k})
        assert not np.array_equal(world.render(codes, 32, 0.0, 0.5, rng()), world.render(other, 32, 0.0, 0.5, rng()))


def test_mention_and_shown_probabilities_are_respected():
    cfg = world.WorldConfig(mention={"colour": 0.25, "size": 0.0, "position": 1.0}, shown={"tone": 0.5})
    p = world.generate(cfg, 4000)
    assert abs(p.factors.mentioned_colour.mean() - 0.25) < 0.03
    assert not p.factors.mentioned_size.any() and p.factors.mentioned_position.all()
    assert abs(p.factors.shown_tone.mean() - 0.5) < 0.03 and abs(p.factors.shown_time.mean() - 0.25) < 0.03
    assert p.factors.shown_shape.all() and not p.factors.shown_template.any()
    assert cfg.mention["texture"] == 0.25 and cfg.kind("colour") == "vision-dominant"


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
    with pytest.raises(ValueError, match="cannot be set here"):
        world.WorldConfig(mention={"template": 0.5})
    with pytest.raises(ValueError, match="cannot be set here"):
        world.WorldConfig(shown={"shape": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        world.WorldConfig(mention={"colour": 1.5})
    with pytest.raises(ValueError, match="unknown value"):
        world.Correlation("colour", "pink", "shape", "circle", 0.5)
    with pytest.raises(TypeError, match="resolution must be int"):
        world.WorldConfig(resolution="32")


def test_articles_agree():
    assert world.caption({"template": "a {}", "shape": "circle", "colour": "orange"},
                         {"colour": True, "shape": True}) == "an orange circle"


def test_redraw_gives_the_same_pictures_with_only_the_named_factor_changed():
    from mdsgap import world as W

    cfg = W.WorldConfig(noise=0.0)
    p = W.generate(cfg, 6, seed=3, split="test")
    assert (W.redraw(cfg, 6, seed=3, split="test") == p.images).all()   # nothing changed: the same images
    own = [str(v) for v in p.factors.colour]
    others = [next(v for v in W.FACTOR_BY_NAME["colour"].values if v != c) for c in own]
    recoloured = W.redraw(cfg, 6, seed=3, split="test", colour=others)
    changed = (recoloured != p.images).any(-1)
    assert changed.any(axis=(1, 2)).all() and changed.mean() < 0.5   # each shape's pixels, not the background
    assert (W.redraw(cfg, 6, seed=3, split="test", colour=own) == p.images).all()
    import pytest
    with pytest.raises(ValueError, match="one value per pair"):
        W.redraw(cfg, 6, colour=["mauve"] * 6)
