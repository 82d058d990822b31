"""The adapter-gap measurements on constructed cases: cones and angles, the logit lens, layer similarity,
conflicting prompts and follow rates; and the interventions and cache of the adapter VLM."""
import math

import pandas as pd
import pytest
import torch

from mdsgap import stats, vlm, world
from mdsgap.vlm import adapter_gap


@pytest.fixture(scope="module")
def vocab():
    return vlm.Vocab.from_world(n=500)


def test_angle_and_geometry_of_constructed_cones():
    g = torch.Generator().manual_seed(0)
    e1, e2 = torch.eye(8)[0], torch.eye(8)[1]
    a = e1 + 0.1 * torch.randn(200, 8, generator=g)  # a narrow cone around e1
    b = e2 + 0.1 * torch.randn(200, 8, generator=g)  # another, orthogonal to it
    geo = adapter_gap.geometry(a, b)
    assert geo["visual cone"] > 0.8 and geo["text cone"] > 0.8
    assert abs(geo["angle"] - 90) < 5 and abs(geo["cross cosine"]) < 0.1
    assert adapter_gap.angle(a, 3 * a) < 0.1  # scale does not change a direction
    assert adapter_gap.angle(a, -a) == pytest.approx(180, abs=0.5)
    wide = torch.randn(400, 8, generator=g)
    assert abs(adapter_gap.geometry(wide, b)["visual cone"]) < 0.05


def test_cross_cosine_is_the_mean_over_all_pairs():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(30, 5, generator=g), torch.randn(20, 5, generator=g)
    brute = torch.nn.functional.cosine_similarity(a[:, None], b[None], dim=-1).mean()
    assert adapter_gap.cross_cosine(a, b) == pytest.approx(float(brute), abs=1e-5)


def test_value_words_split_multiword_values():
    factors = pd.DataFrame({"shape": ["circle"], "colour": ["red"], "shade": ["pale"], "tint": ["warm"],
                            "size": ["small"], "position": ["top left"], "texture": ["plain"],
                            "backdrop": ["dim"]})
    assert adapter_gap.value_words(factors)[0] == {"circle", "red", "pale", "warm", "small", "top", "left",
                                                   "plain", "dim"}
    assert adapter_gap.value_words(factors, ("position",))[0] == {"top", "left"}


def test_lens_hits_count_own_shuffled_and_any(vocab):
    pairs = world.generate(world.WorldConfig(), 40, seed=2, split="t")
    own = [vocab.index[c] for c in pairs.factors.colour]
    decoded = torch.stack([torch.tensor(own)[:, None].repeat(1, 3),  # layer 0: every token the own colour
                           torch.full((40, 3), vocab.index["the"])])  # layer 1: a word naming nothing
    hits = adapter_gap.lens_hits(decoded, vocab, pairs.factors, seed=0)
    assert hits.loc[0, "own image"] == 1 and hits.loc[0, "any value"] == 1
    assert hits.loc[0, "shuffled image"] < 0.6  # six colours: a shuffled image shares it ~1/6 of the time
    assert hits.loc[1, ["own image", "shuffled image", "any value"]].sum() == 0


def test_lens_and_layer_similarity_shapes(vocab):
    torch.manual_seed(0)
    cfg = vlm.VLMConfig(d_model=32, n_layers=2, n_heads=4, max_len=40)
    model = vlm.AdapterVLM(len(vocab), 12, cfg).eval()
    patches = torch.randn(6, 5, 12)
    decoded = adapter_gap.lens_words(model, vocab, patches)
    assert decoded.shape == (3, 6, 5) and (decoded >= len(vlm.SPECIALS)).all()
    caps = world.generate(world.WorldConfig(), 6, seed=0, split="t").captions
    sim = adapter_gap.layer_similarity(model, patches, vocab.batch(caps, vlm.RecipeConfig.max_text), seed=0)
    assert list(sim.layer) == [0, 1, 2]
    assert ((sim.matched - sim.unmatched - sim.margin).abs() < 1e-9).all()


def test_layer_similarity_sees_matched_pairs_that_share_a_direction(vocab):
    """A model whose visual tokens equal the embedding of the caption's colour word: at the input layer
    matched pairs are closer than shuffled ones."""
    torch.manual_seed(0)
    cfg = vlm.VLMConfig(projector="linear", d_model=32, n_layers=1, n_heads=4, max_len=24)
    model = vlm.AdapterVLM(len(vocab), len(vocab), cfg).eval()
    with torch.no_grad():
        model.project.weight.copy_(model.lm.embed.weight.T)
        model.project.bias.zero_()
        model.lm.pos.zero_()
    pairs = world.generate(world.WorldConfig(), 60, seed=3, split="t")
    colour = torch.tensor([vocab.index[c] for c in pairs.factors.colour])
    patches = torch.nn.functional.one_hot(colour, len(vocab)).float()[:, None].repeat(1, 2, 1)
    ids = vocab.batch([f"{c} {c} {c}" for c in pairs.factors.colour], 8, bos=False, eos=False)
    sim = adapter_gap.layer_similarity(model, patches, ids, seed=0)
    assert sim.loc[0, "matched"] == pytest.approx(1, abs=1e-5) and sim.loc[0, "margin"] > 0.3


def test_conflict_prompts_swap_the_value_and_ask(vocab):
    pairs = world.generate(world.WorldConfig(), 50, seed=4, split="t")
    prompts, asserted = adapter_gap.conflict_prompts(pairs.factors, "colour", seed=0)
    for p, a, true, cap in zip(prompts, asserted, pairs.factors.colour, pairs.factors.caption):
        assert a != true and a in world.FACTOR_BY_NAME["colour"].values
        assert p.endswith(vlm.QUESTIONS["colour"]) and a in vlm.words(p) and true not in vlm.words(p)
        assert len(vlm.words(p)) == len(vlm.words(cap)) + 1 + len(vlm.words(vlm.QUESTIONS["colour"]))
        vocab.encode(p)  # every word is in the vocabulary
    with pytest.raises(ValueError, match="do not always name the size"):
        adapter_gap.conflict_prompts(pairs.factors, "size")


def test_follow_rates():
    rates = adapter_gap.follow_rates(["red", "blue", "green", "red"], ["red"] * 4, ["blue"] * 4)
    assert rates == {"image": 0.5, "text": 0.25, "other": 0.25}


def test_interventions_scale_and_reinject_visual_tokens(vocab):
    torch.manual_seed(0)
    model = vlm.AdapterVLM(len(vocab), 12, vlm.VLMConfig(d_model=32, n_layers=2, max_len=24)).eval()
    patches, ids = torch.randn(2, 4, 12), vocab.batch(["a red circle", "a blue square"], 6)
    plain, _ = model(patches, ids)
    same, _ = model(patches, ids, visual_scale=1.0, reinject=None)
    assert torch.equal(plain, same)
    assert not torch.allclose(plain, model(patches, ids, visual_scale=3.0)[0])
    _, states = model(patches, ids, reinject=1)
    _, base = model(patches, ids)
    vis = model.visual_tokens(patches)
    assert torch.allclose(states[1][:, :4], base[1][:, :4] + vis, atol=1e-5)
    assert torch.allclose(states[1][:, 4:], base[1][:, 4:], atol=1e-6)
    with pytest.raises(ValueError, match="2 layers"):
        model(patches, ids, reinject=3)
    got = vlm.answers(model, vocab, patches, ["what colour is the shape ?"] * 2, visual_scale=2.0)
    assert len(got) == 2


def test_fit_trains_stages_once_and_shares_the_prefix(vocab, tmp_path, monkeypatch):
    monkeypatch.setenv("MDSGAP_CACHE", str(tmp_path))
    pairs = world.generate(world.WorldConfig(), 32, seed=0, split="t")
    patches = torch.randn(32, 4, 12)
    cfg = vlm.VLMConfig(d_model=32, n_layers=1, max_len=4 + vlm.RecipeConfig.max_text)
    base = vlm.RecipeConfig(lm_steps=2, align_steps=2, tune_steps=0, batch_size=8)
    tune = vlm.RecipeConfig(lm_steps=0, align_steps=0, tune_steps=2, batch_size=8)
    args = ({"name": "test"}, {"n": 32}, vocab, patches, pairs.captions, pairs.factors, cfg)
    a, curve = vlm.fit(*args, [base, tune], progress=False)
    assert list(dict.fromkeys(curve.phase)) == ["language model", "alignment", "tuning"]
    assert len(list((tmp_path / "vlm").glob("*/weights.pt"))) == 2
    b, _ = vlm.fit(*args, [base, tune], progress=False)  # from the cache
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    vlm.fit(*args, [base, vlm.RecipeConfig(lm_steps=0, align_steps=0, tune_steps=2, batch_size=8,
                                     context_share=1.0)], progress=False)
    assert len(list((tmp_path / "vlm").glob("*/weights.pt"))) == 3, "the base stage is shared"
    assert not math.isnan(curve.loss.iloc[-1])


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    """A randomly initialised LLaVA (CLIP vision tower, Llama language model) saved from configs."""
    pytest.importorskip("transformers")
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=32, patch_size=8),
        text_config=LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                num_attention_heads=4, num_key_value_heads=4),
        image_token_index=63, image_seq_length=16)
    folder = tmp_path_factory.mktemp("llava")
    LlavaForConditionalGeneration(cfg).save_pretrained(folder)
    return folder


def test_llava_real_path_measures_a_tiny_checkpoint(tiny_llava, tmp_path):
    from mdsgap.vlm import llava

    model, _ = llava.load(tiny_llava)
    pixels = torch.randn(3, 3, 32, 32)
    with_image = torch.cat([torch.full((3, 16), 63), torch.randint(3, 60, (3, 4))], 1)
    text = torch.randint(3, 60, (3, 7))
    v, t = llava.layer_means(model, with_image, pixels), llava.layer_means(model, text)
    assert v.shape == t.shape == (4, 3, 32)
    sim = adapter_gap.similarity_by_layer(v, t, seed=0)
    assert list(sim.layer) == [0, 1, 2, 3]
    geo = llava.token_geometry(model, pixels, text)
    assert set(geo) == {"visual cone", "text cone", "angle", "cross cosine"} and 0 <= geo["angle"] <= 180
    lens = llava.lens_ids(model, with_image, pixels)
    assert len(lens) == 4 and lens[0].shape == (48,) and int(lens[0].max()) < 64
    with pytest.raises(FileNotFoundError, match="LLaVA checkpoint"):
        llava.load(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="not 'llava'"):
        llava.load(tmp_path)


def test_attention_boost_is_the_same_with_and_without_grad(vocab):
    """torch's inference fast path misreads a biased mask; the model must give the training path's numbers."""
    torch.manual_seed(0)
    model = vlm.AdapterVLM(len(vocab), 12, vlm.VLMConfig(d_model=32, n_layers=2, max_len=24)).eval()
    patches, ids = torch.randn(2, 4, 12), vocab.batch(["a red circle", "a blue square"], 6)
    with torch.no_grad():
        fast, _ = model(patches, ids, attend_image=3.0)
        plain, _ = model(patches, ids)
        near, _ = model(patches, ids, attend_image=1.0001)
    slow, _ = model(patches, ids, attend_image=3.0)
    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.allclose(plain, near, atol=1e-2) and not torch.allclose(plain, fast, atol=1e-2)
    with pytest.raises(ValueError, match="positive"):
        model(patches, ids, attend_image=0.0)


def test_dominance_verdicts_name_the_side_and_the_best_intervention():
    rows = []
    for s in range(3):
        rows += [{"seed": s, "factor": "shape", "intervention": "none", "image": 0.2, "text": 0.7,
                  "other": 0.1, "accuracy": 0.7},
                 {"seed": s, "factor": "shape", "intervention": "boost", "image": 0.5, "text": 0.4,
                  "other": 0.1, "accuracy": 0.6},
                 {"seed": s, "factor": "colour", "intervention": "none", "image": 0.3 + 0.3 * s,
                  "text": 0.6 - 0.3 * s, "other": 0.1, "accuracy": 0.9},
                 {"seed": s, "factor": "colour", "intervention": "boost", "image": 0.3, "text": 0.6,
                  "other": 0.1, "accuracy": 0.9}]
    v = adapter_gap.dominance_verdicts(pd.DataFrame(rows))
    assert v["shape"]["follows"] == "the text" and v["shape"]["best"] == "boost"
    assert v["shape"]["best_helps"] and v["shape"]["best_accuracy"] == pytest.approx(0.6)
    assert v["colour"]["follows"] == "neither clearly"


def test_depth_verdict_reads_the_rise_and_the_peak():
    layers = range(5)
    raw = pd.DataFrame([{"seed": s, "layer": k, "matched": 0.2 * k + 0.01 * s, "unmatched": 0.19 * k,
                         "margin": 0.01 * k} for s in range(3) for k in layers])
    centred = pd.DataFrame([{"seed": s, "layer": k, "matched": 0, "unmatched": 0,
                             "margin": [0.0, 0.01, 0.03, 0.02, 0.0][k] + 0.001 * s}
                            for s in range(3) for k in layers])
    cols = ["matched", "unmatched", "margin"]
    d = adapter_gap.depth_verdict(stats.intervals(raw, ["layer"], cols),
                                  stats.intervals(centred, ["layer"], cols))
    assert d["rises"] and d["rise"] == pytest.approx(0.8, abs=0.01)
    assert d["rise_unmatched"] == pytest.approx(0.76) and d["peak_layer"] == 2
    assert d["peak_above_zero"] and d["n_layers"] == 4


def test_accuracy_and_dominance_tables(vocab):
    torch.manual_seed(0)
    model = vlm.AdapterVLM(len(vocab), 12, vlm.VLMConfig(d_model=32, n_layers=2, max_len=40)).eval()
    pairs = world.generate(world.WorldConfig(), 20, seed=5, split="t")
    patches = torch.randn(20, 4, 12)
    acc = adapter_gap.accuracy(model, vocab, patches, pairs.factors)
    assert set(acc) == set(vlm.QUESTIONS) and all(0 <= a <= 1 for a in acc.values())
    table = adapter_gap.dominance(model, vocab, patches, pairs.factors,
                                  interventions={"none": {}, "x2": {"attend_image": 2.0}})
    assert len(table) == 4 and set(table.intervention) == {"none", "x2"}
    assert ((table.image + table.text + table.other - 1).abs() < 1e-9).all()


def test_words_mask_leaves_out_the_specials(vocab):
    ids = vocab.batch(["a red circle"], 6)
    assert adapter_gap.words_mask(ids).tolist() == [[False, True, True, True, False, False]]
