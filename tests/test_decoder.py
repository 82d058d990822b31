import numpy as np
import pytest
import torch

from mdsgap import world
from mdsgap.clip import models
from mdsgap.edit import decoder as D, reader as R


def test_config_checks_its_resolution_and_dropout():
    with pytest.raises(ValueError, match="divisible"):
        D.DecoderConfig(resolution=18, channels=(8, 16, 32))
    with pytest.raises(ValueError, match="prediction"):
        D.DecoderConfig(prediction="v")
    with pytest.raises(ValueError, match="cond_dropout"):
        D.DecoderConfig(cond_dropout=1.0)
    with pytest.raises(ValueError, match="every image shows"):
        R.ReaderConfig(factors=("tone",))


def test_pixels_round_trip_and_downsample():
    images = world.generate(world.WorldConfig(), 3, seed=0).images
    x = D.to_pixels(images, 32)
    assert x.min() >= -1 and x.max() <= 1 and np.array_equal(D.to_uint8(x), images)
    small = D.to_pixels(images, 16)
    assert small.shape == (3, 3, 16, 16)
    assert torch.allclose(small[:, :, 0, 0], x[:, :, :2, :2].mean((2, 3)), atol=1e-5)  # area average


@pytest.mark.slow
def test_decoder_learns_to_draw_the_colour_it_is_given():
    """Two conditions (red and blue images, embedded as two orthogonal vectors): after a short training
    the decoder draws each condition's mean colour, and sampling is deterministic for a seed."""
    torch.manual_seed(0)
    n = 256
    cond = torch.zeros(n, 8)
    cond[: n // 2, 0], cond[n // 2:, 1] = 1.0, 1.0
    images = np.zeros((n, 16, 16, 3), np.uint8)
    images[: n // 2, ..., 0], images[n // 2:, ..., 2] = 220, 220
    cfg = D.DecoderConfig(resolution=16, channels=(16, 32), steps=150, batch_size=32, lr=3e-3, n_images=n)
    model, curve = D.train_decoder(images, cond, cfg, progress=False)
    assert curve.loss.iloc[-1] < curve.loss.iloc[0]
    out = D.sample(model, cond[[0, -1]], steps=10, guidance=2.0, seed=1).astype(float)
    assert out[0, ..., 0].mean() > out[0, ..., 2].mean() + 60  # red where asked for red
    assert out[1, ..., 2].mean() > out[1, ..., 0].mean() + 60  # blue where asked for blue
    again = D.sample(model, cond[[0, -1]], steps=10, guidance=2.0, seed=1)
    assert np.array_equal(again, out.astype(np.uint8))


@pytest.mark.slow
def test_reader_reads_real_world_images_well_above_chance():
    cfg = R.ReaderConfig(resolution=16, factors=("colour", "size"), n_images=2000, steps=150)
    reader = R.train_reader(cfg, progress=False)
    test = world.generate(world.WorldConfig(), 300, seed=0, split="test")
    got = R.read(reader, test.images)
    assert list(got.columns) == ["colour", "size"]
    assert (got.colour == test.factors.colour.astype(str)).mean() > 0.8  # chance 1/6


def test_cached_decoder_is_cached_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("MDSGAP_CACHE", str(tmp_path))
    clip = models.create_clip("mdsgap-tiny", seed=0)
    cfg = D.DecoderConfig(channels=(8, 16), n_images=16, steps=2, batch_size=4)
    first, _ = D.cached_decoder(clip, cfg, progress=False)
    second, curve = D.cached_decoder(clip, cfg, progress=False)
    assert len(list((tmp_path / "decoders").iterdir())) == 1 and len(curve) == 1
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_gap_shift_moves_the_caption_mean_onto_the_image_mean_and_the_prior_learns_a_rotation():
    from mdsgap.edit import prior as P

    g = torch.Generator().manual_seed(0)
    base = torch.randn(500, 8, generator=g)
    x = torch.nn.functional.normalize(base + torch.tensor([3.0] + [0.0] * 7), dim=-1)
    y = torch.nn.functional.normalize(base + torch.tensor([0.0, 3.0] + [0.0] * 6), dim=-1)
    shifted = P.gap_shift(y, x, y)
    assert (shifted * x).sum(1).mean() > (y * x).sum(1).mean()
    model = P.train_prior(x, y, steps=300)
    with torch.no_grad():
        assert (model(y) * x).sum(1).mean() > 0.95
    with pytest.raises(ValueError, match="matched pairs"):
        P.train_prior(x, y[:10])


def test_accuracy_and_changes_compare_reads_per_factor():
    import pandas as pd

    before = pd.DataFrame({"shape": ["circle", "square", "cross"], "colour": ["red", "red", "blue"]})
    after = pd.DataFrame({"shape": ["circle", "circle", "cross"], "colour": ["red", "red", "blue"]})
    assert R.changes(before, after).to_dict() == {"shape": pytest.approx(1 / 3), "colour": 0.0}
    assert R.accuracy(after, before).to_dict() == {"shape": pytest.approx(2 / 3), "colour": 1.0}
    ci = R.accuracy_ci(after, before)
    assert list(ci.columns) == ["value", "low", "high"]
    assert ci.loc["shape", "value"] == pytest.approx(2 / 3) and ci.loc["colour", "low"] == 1.0
    assert ci.loc["shape", "low"] <= 2 / 3 <= ci.loc["shape", "high"]
    with pytest.raises(ValueError, match="same images"):
        R.changes(before, after.iloc[:2])


@pytest.mark.parametrize("kwargs", [dict(cond_channels=4), dict(prediction="epsilon"), dict(cond_maps=2)])
def test_decoder_variants_train_and_sample(kwargs):
    images = world.generate(world.WorldConfig(), 16, seed=0).images
    cfg = D.DecoderConfig(channels=(8, 16), steps=2, batch_size=4, n_images=16, **kwargs)
    model, _ = D.train_decoder(images, torch.randn(16, 8), cfg, progress=False)
    assert D.sample(model, torch.randn(3, 8), steps=2).shape == (3, 16, 16, 3)


def test_spatial_condition_maps_depend_on_the_embedding():
    torch.manual_seed(0)
    cfg = D.DecoderConfig(channels=(8, 16), cond_maps=2)
    model = D.EmbeddingDecoder(8, cfg).eval()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 10])
    e = torch.randn(1, 8).repeat(2, 1)
    e[1] += 1.0
    with torch.no_grad():
        out = model(x[:1].repeat(2, 1, 1, 1), t, e)
    assert model.unet.conv_in.in_channels == 5 and not torch.allclose(out[0], out[1])
