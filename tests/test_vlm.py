"""The adapter VLM's pieces: vocabulary, shapes, causality, projectors, patch tokens of the CLIP tower."""
import pytest
import torch

from mdsgap import vlm, world
from mdsgap.clip import models


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


def test_answer_mask_covers_only_the_answer(vocab):
    ids = vocab.batch(["a red circle . what colour is the shape ? red"], length=16)
    mask = vlm.answer_mask(ids, vocab)
    assert [vocab.tokens[i] for i in ids[0][mask[0]]] == ["red", "<eos>"]


def test_questions_carry_the_caption_at_the_given_share(vocab):
    pairs = world.generate(world.WorldConfig(), 400, seed=1, split="t")
    g = torch.Generator().manual_seed(0)
    texts = vlm.question_texts(pairs.factors, pairs.captions, g, share=0.25)
    with_caption = sum(not any(t.startswith(q) for q in vlm.QUESTIONS.values()) for t in texts)
    assert 60 < with_caption < 140
    for t, (_, row) in zip(texts, pairs.factors.iterrows()):
        q = next(q for q in vlm.QUESTIONS.values() if q in t)
        factor = next(f for f, qq in vlm.QUESTIONS.items() if qq == q)
        assert t.endswith(f"{q} {row[factor]}")


def test_training_runs_every_phase_and_answers_with_words(vocab):
    pairs = world.generate(world.WorldConfig(), 64, seed=0, split="t")
    patches = torch.randn(64, 4, 12)
    model = vlm.AdapterVLM(len(vocab), 12, vlm.VLMConfig(d_model=32, n_layers=1))
    recipe = vlm.RecipeConfig(lm_steps=3, align_steps=2, tune_steps=3, batch_size=8)
    model, curve = vlm.train(model, vocab, patches, pairs.captions, pairs.factors, recipe, progress=False)
    assert set(curve.phase) == {"language model", "alignment", "tuning"}
    got = vlm.answers(model, vocab, patches[:3], ["what colour is the shape ?", "a red shape . what shape "
                                                  "is it ?", "what size is the shape ?"])
    assert len(got) == 3 and all(w in vocab.index and w not in vlm.SPECIALS for w in got)
