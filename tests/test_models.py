import time

import open_clip
import pytest
import torch

from mdsgap import world
from mdsgap.clip import models, training


def test_unknown_model_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"Close matches: \['ViT-B-32'"):
        models.create_clip("ViT-B-33")


def test_unknown_pretrained_tag_lists_known_tags():
    with pytest.raises(ValueError, match="Known tags"):
        models.create_clip("mdsgap-tiny", "openai")


def test_missing_checkpoint_file_is_named():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.create_clip("mdsgap-tiny", "/nowhere/model.safetensors")


def test_wrong_types_are_named():
    with pytest.raises(TypeError, match="non-empty string"):
        models.create_clip(32)
    with pytest.raises(TypeError, match="pretrained must be a string"):
        models.create_clip("mdsgap-tiny", None)


def test_random_init_is_seeded():
    a = models.create_clip("mdsgap-tiny", seed=1).encode_texts(["a red circle"])
    b = models.create_clip("mdsgap-tiny", seed=1).encode_texts(["a red circle"])
    c = models.create_clip("mdsgap-tiny", seed=2).encode_texts(["a red circle"])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_checkpoint_loads_through_open_clip(tmp_path):
    clip = models.create_clip("mdsgap-tiny", seed=3)
    folder = models.save_checkpoint(clip.model, models.get_model_config("mdsgap-tiny"), tmp_path / "ckpt")
    images = world.generate(world.WorldConfig(), 4).images
    want = clip.encode_images(images)

    # 1) open_clip's own factory, by registered name and pretrained=<file>
    model, _, _ = open_clip.create_model_and_transforms(
        "mdsgap-tiny", pretrained=str(folder / models.WEIGHTS_FILE))
    model.eval()
    with torch.no_grad():
        got = model.encode_image(clip.image_tensor(images))
    assert torch.allclose(got, want, atol=1e-6)

    # 2) open_clip's local-dir: schema, and mdsgap's loader with a file path
    model2, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    assert all(torch.equal(p, q) for p, q in zip(model2.state_dict().values(), model.state_dict().values()))
    again = models.create_clip("mdsgap-tiny", str(folder / models.WEIGHTS_FILE))
    assert torch.allclose(again.encode_images(images), want, atol=1e-6)


def test_save_checkpoint_leaves_nothing_half_written(tmp_path, monkeypatch):
    clip = models.create_clip("mdsgap-tiny")
    import safetensors.torch

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        models.save_checkpoint(clip.model, models.get_model_config("mdsgap-tiny"), tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_image_tensor_resizes_to_the_model():
    clip = models.create_clip("mdsgap-tiny")
    x = clip.image_tensor(world.generate(world.WorldConfig(resolution=48), 2).images)
    assert x.shape == (2, 3, 32, 32)


def test_training_reduces_loss_and_is_deterministic():
    cfg = training.TrainConfig(model="mdsgap-tiny", n_pairs=256, steps=30, batch_size=32, eval_every=10, lr=2e-3)
    a, ha = training.train_clip(cfg, progress=False)
    _, hb = training.train_clip(cfg, progress=False)
    assert ha.val_loss.iloc[-1] < ha.val_loss.iloc[0]
    assert ha.equals(hb)
    assert ha.temperature.iloc[-1] == pytest.approx(0.01)


def test_cached_clip_is_keyed_by_config():
    cfg = training.TrainConfig(model="mdsgap-tiny", n_pairs=64, steps=2, batch_size=8, eval_every=1)
    first = training.cached_clip(cfg, progress=False)
    second = training.cached_clip(cfg, progress=False)
    assert first.folder == second.folder
    other = training.cached_clip(training.TrainConfig(**{**cfg.__dict__, "seed": 1}), progress=False)
    assert other.folder != first.folder
    texts = ["a red circle"]
    assert torch.equal(first.clip.encode_texts(texts), second.clip.encode_texts(texts))


def test_cached_clip_is_keyed_by_architecture(monkeypatch):
    """A registered name whose config changes (a longer text context) must not load the old model."""
    cfg = training.TrainConfig(model="mdsgap-tiny", n_pairs=64, steps=2, batch_size=8, eval_every=1)
    first = training.cached_clip(cfg, progress=False)
    arch = models.get_model_config("mdsgap-tiny")
    longer = {**arch, "text_cfg": {**arch["text_cfg"], "context_length": arch["text_cfg"]["context_length"] + 4}}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, models.resolve_name("mdsgap-tiny"), longer)
    second = training.cached_clip(cfg, progress=False)
    assert second.folder != first.folder
    assert second.clip.model.positional_embedding.shape[0] == longer["text_cfg"]["context_length"]


def test_train_config_validates():
    with pytest.raises(TypeError, match="steps must be int"):
        training.TrainConfig(steps="10")
    with pytest.raises(ValueError, match="temperature"):
        training.TrainConfig(temperature=0.0)
    assert training.TrainConfig(world={"resolution": 32}).world.resolution == 32


def test_fine_tuning_starts_from_the_base_model():
    base = training.TrainConfig(model="mdsgap-tiny", n_pairs=64, steps=3, batch_size=8, eval_every=1)
    trained = training.cached_clip(base, progress=False)
    # zero learning rate: the fine-tuned weights are the base weights (the temperature is reset, as configured)
    tuned = training.TrainConfig(model="mdsgap-tiny", n_pairs=64, steps=2, batch_size=8, eval_every=1, lr=0.0,
                                 temperature=0.5, init=base.to_dict())
    clip, history = training.train_clip(tuned, progress=False)
    for (name, a), b in zip(trained.clip.model.state_dict().items(), clip.model.state_dict().values()):
        if name != "logit_scale":
            assert torch.equal(a, b), name
    assert history.temperature.iloc[-1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="init model"):
        training.train_clip(training.TrainConfig(model="mdsgap-small", steps=1, batch_size=4, n_pairs=8,
                                                 init=base.to_dict()), progress=False)


def test_sweep_config_fine_tunes_its_own_base():
    r = training.SweepConfig(base_steps=5, finetune_steps=2)
    ft = r.finetune(1, 0.01, mention=0.25)
    assert ft.init == r.base(1).to_dict() and ft.steps == 2 and ft.temperature == 0.01 and ft.seed == 1
    assert ft.world == world.mention_world(0.25) and ft.world.mention["shape"] == 1.0
    assert r.finetune(1, None).world == world.WorldConfig()


def test_model_names_resolve_in_any_case():
    assert models.resolve_name("vit-b-32") == "ViT-B-32" and models.resolve_name("ViT-B-32") == "ViT-B-32"
    clip = models.create_clip("MDSGAP-Tiny")
    assert clip.name == "mdsgap-tiny" and clip.identity["name"] == "mdsgap-tiny"
    assert clip.identity["architecture"] == models.get_model_config("mdsgap-tiny")  # random-init caches key on it
    with pytest.raises(models.ModelError, match=r"Unknown model name 'vit-b-33'. Close matches: \['ViT-B-32'"):
        models.resolve_name("vit-b-33")


def test_checkpoint_of_another_architecture_names_it(tmp_path):
    clip = models.create_clip("mdsgap-tiny")
    folder = models.save_checkpoint(clip.model, models.get_model_config("mdsgap-tiny"), tmp_path / "ckpt")
    wrapped = tmp_path / "wrapped.pt"  # a training script's checkpoint: nested and DistributedDataParallel's names
    torch.save({"state_dict": {f"module.{k}": v for k, v in clip.model.state_dict().items()}}, wrapped)
    for path in (folder / models.WEIGHTS_FILE, wrapped):
        with pytest.raises(models.ModelError, match="this checkpoint has the keys of mdsgap-tiny, not mdsgap-small: "
                                                    "pass --model mdsgap-tiny"):
            models.create_clip("mdsgap-small", str(path))


def test_checkpoint_of_no_known_architecture_names_the_differences(tmp_path):
    state = models.create_clip("mdsgap-tiny").model.state_dict()
    state["visual.conv1.weight"] = torch.zeros(32, 3, 8, 8)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(models.ModelError, match=r"does not match mdsgap-tiny \(1 tensors differ, e.g. visual.conv1"
                                                r".weight: checkpoint \(32, 3, 8, 8\), mdsgap-tiny \(32, 3, 16, 16\)\) "
                                                r"nor any"):
        models.create_clip("mdsgap-tiny", str(tmp_path / "odd.pt"))


def test_real_architectures_are_told_apart_quickly(tmp_path):
    """The issue's case, RN50 weights named as ViT-B-32, on shapes alone (candidates built on the meta device)."""
    from safetensors.torch import save_file

    save_file({k: torch.empty(v) for k, v in models._arch_shapes("RN50").items()}, str(tmp_path / "rn50.safetensors"))
    start = time.perf_counter()
    problem = models.checkpoint_mismatch("ViT-B-32", str(tmp_path / "rn50.safetensors"))
    assert problem.startswith("this checkpoint has the keys of RN50 (as do ['RN50-quickgelu']), not ViT-B-32: "
                              "pass --model RN50")
    assert time.perf_counter() - start < 10


def test_training_pairs_are_generated_once_per_world_and_equal_generate():
    from mdsgap import world
    from mdsgap.clip import training

    cfg = world.WorldConfig()
    a = training._training_pairs(cfg, 16, 3, "train")
    assert training._training_pairs(cfg, 16, 3, "train") is a
    assert (a.images == world.generate(cfg, 16, seed=3, split="train").images).all()
    other = training._training_pairs(world.mention_world(0.5), 16, 3, "train")
    assert other is not a and len(training._PAIRS) <= 4


def test_remembered_tokenizer_gives_open_clips_tokens():
    import open_clip

    from mdsgap.clip import models

    plain = open_clip.get_tokenizer("mdsgap-tiny")
    tok = models.Remembered(plain)
    texts = ["a red circle", "a large blue square on a striped background", "a red circle"]
    assert torch.equal(tok(texts), plain(texts)) and torch.equal(tok(texts[:1]), plain(texts[:1]))
    assert torch.equal(tok("a red circle"), plain("a red circle")) and tok.context_length == plain.context_length
