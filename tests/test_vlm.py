"""The adapter VLM's pieces: vocabulary, shapes, causality, projectors, patch tokens of the CLIP tower."""
import pytest
import torch

from mdsgap import models, vlm, world


@pytest.fixture(scope="module")
def vocab():
    return vlm.Vocab.from_world(n=500)


def test_vocab_round_trips_captions_questions_and_answers(vocab):
    caps = world.generate(world.WorldConfig(), 50, seed=3, split="t").captions
    for text in caps + list(vlm.QUESTIONS.values()) + ["red", "triangle", "large"]:
        assert vocab.decode(vocab.encode(text)) == " ".join(vlm.words(text))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("a zebra")
    ids = vocab.batch(["a red circle", "what shape is it ?"], length=8)
    assert ids.shape == (2, 8) and ids[0, 0] == vlm.BOS and (ids[0, 5:] == vlm.PAD).all()
    with pytest.raises(ValueError, match="raise max_text"):
        vocab.batch(["a red circle"], length=3)


@pytest.mark.parametrize("kind", ["linear", "mlp2"])
def test_shapes_and_hidden_states(vocab, kind):
    cfg = vlm.VLMConfig(projector=kind, d_model=32, n_layers=2, n_heads=4, max_len=24)
    model = vlm.AdapterVLM(len(vocab), d_visual=12, cfg=cfg)
    ids = vocab.batch(["a red circle", "a blue square"], length=6)
    logits, states = model(torch.randn(2, 5, 12), ids)
    assert logits.shape == (2, 6, len(vocab)) and len(states) == 3 and states[0].shape == (2, 11, 32)
    logits, states = model(None, ids)
    assert logits.shape == (2, 6, len(vocab)) and states[-1].shape == (2, 6, 32)
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.randn(2, 20, 12), ids)


def test_the_language_model_is_causal(vocab):
    torch.manual_seed(0)
    model = vlm.AdapterVLM(len(vocab), 12, vlm.VLMConfig(d_model=32, n_layers=2)).eval()
    a = vocab.batch(["a red circle on a plain background"], length=10)
    b = a.clone()
    b[0, 6:] = vocab.index["square"]
    patches = torch.randn(1, 4, 12)
    la, _ = model(patches, a)
    lb, _ = model(patches, b)
    assert torch.allclose(la[0, :6], lb[0, :6], atol=1e-5) and not torch.allclose(la[0, 6:], lb[0, 6:])


def test_config_refuses_unknown_projector_and_bad_heads():
    with pytest.raises(ValueError, match="projector"):
        vlm.VLMConfig(projector="qformer")
    with pytest.raises(ValueError, match="divisible"):
        vlm.VLMConfig(d_model=30, n_heads=4)


def test_patch_tokens_of_the_clip_tower():
    clip = models.create_clip("mdsgap-tiny", seed=0)
    images = world.generate(world.WorldConfig(), 3, seed=0, split="t").images
    tokens = vlm.patch_tokens(clip, images)
    assert tokens.ndim == 3 and tokens.shape[0] == 3 and tokens.shape[1] > 1
    assert clip.model.visual.output_tokens is False, "the tower is left as it was"
