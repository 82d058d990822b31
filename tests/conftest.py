import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes its cache entries into a fresh temporary folder, never the user's cache."""
    monkeypatch.setenv("MDSGAP_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny_unclip():
    """A builder of tiny Stable unCLIP pipelines from configs (no download), for the real-path tests."""
    pytest.importorskip("transformers")
    return tiny_unclip_pipeline


def tiny_unclip_pipeline(folder, d: int = 32):
    """A randomly initialised Stable unCLIP img2img pipeline saved to folder / 'pipe' (embedding width d)."""
    import json

    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline,
                           UNet2DConditionModel)
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer,
                              CLIPVisionConfig, CLIPVisionModelWithProjection)

    torch.manual_seed(0)
    (folder / "tok").mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{f"{c}</w>": i + 2 for i, c in enumerate("abc")}}
    (folder / "tok" / "vocab.json").write_text(json.dumps(vocab))
    (folder / "tok" / "merges.txt").write_text("#version: 0.2\n")
    parts = dict(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=d, projection_dim=d, num_hidden_layers=2, num_attention_heads=4, image_size=32,
            intermediate_size=37, patch_size=4)),
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=d),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=CLIPTokenizer(str(folder / "tok" / "vocab.json"), str(folder / "tok" / "merges.txt"),
                                model_max_length=16),
        text_encoder=CLIPTextModel(CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=d, projection_dim=d, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, vocab_size=len(vocab))),
        unet=UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64), attention_head_dim=(2, 4),
            class_embed_type="projection", projection_class_embeddings_input_dim=2 * d, cross_attention_dim=d,
            layers_per_block=1, norm_num_groups=8),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        vae=AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=8, latent_channels=4,
                          down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2))
    StableUnCLIPImg2ImgPipeline(**parts).save_pretrained(folder / "pipe")
    return folder / "pipe"


@pytest.fixture
def one_thread():
    """One torch thread, as in the subprocesses (ENV): fast on a shared machine, and the same arithmetic."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
