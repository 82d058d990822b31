"""The adapter-VLM chapter's real path: a Hugging Face LLaVA checkpoint in a local folder, measured the way
`adapter_gap` measures the small model (transformers' `LlavaForConditionalGeneration`; the book extra already
installs transformers for the Stable unCLIP path, so this adds no install weight).

Inputs are what LLaVA's processor makes: `input_ids` in which the image placeholder token is already
repeated once per visual token, and `pixel_values`. Visual and text states come from separate passes (the
image alone, the caption alone), as in `adapter_gap.layer_similarity`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mdsgap.vlm import adapter_gap


def load(folder, device: str = "cpu"):
    """(model, processor) from a folder written by `save_pretrained` (processor None when absent)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no config.json: pass the local folder of a LLaVA checkpoint "
                                "(for example llava-hf/llava-1.5-7b-hf, downloaded with its processor).")
    from transformers import AutoConfig, AutoProcessor, LlavaForConditionalGeneration

    model_type = AutoConfig.from_pretrained(folder).model_type
    if model_type != "llava":
        raise ValueError(f"{folder} holds a {model_type!r} model, not 'llava': this path reads "
                         "LlavaForConditionalGeneration checkpoints (LLaVA 1.5 and its relatives).")
    model = LlavaForConditionalGeneration.from_pretrained(folder).to(device).eval()
    try:
        processor = AutoProcessor.from_pretrained(folder)
    except (OSError, ValueError, TypeError):
        processor = None
    return model, processor


def image_mask(model, input_ids: torch.Tensor) -> torch.Tensor:
    """True at the positions of the image's visual tokens."""
    return input_ids == model.config.image_token_id


def _language_model(model):
    """The decoder stack (with its final `norm`), across transformers versions."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "language_model"):  # transformers >= 4.52
        return inner.language_model
    return model.language_model.model  # older: LlamaForCausalLM under .language_model


@torch.no_grad()
def layer_means(model, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(layers + 1, n, d): hidden states averaged over the visual tokens (with `pixel_values`) or over the
    attended text tokens (without), every layer of the language model. transformers returns the last
    layer's states after the final norm (the others before it), so the last point is normed; leave
    BOS out of `input_ids` for text (its states are alike across captions and large in Llama)."""
    out = model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                output_hidden_states=True)
    if pixel_values is not None:
        mask = image_mask(model, input_ids)
    else:
        mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    return adapter_gap.pooled(out.hidden_states, mask)


@torch.no_grad()
def visual_tokens(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(n * P, d): the projected visual tokens, as the language model receives them."""
    out = model.get_image_features(pixel_values=pixel_values)
    feats = getattr(out, "pooler_output", out)  # a tensor in older transformers
    return torch.cat([f.reshape(-1, f.shape[-1]) for f in feats])


@torch.no_grad()
def token_geometry(model, pixel_values: torch.Tensor, text_ids: torch.Tensor,
                   attention_mask: torch.Tensor | None = None) -> dict[str, float]:
    """`adapter_gap.geometry` of the projected visual tokens and the text token embeddings of `text_ids`
    (padding left out where `attention_mask` is 0)."""
    keep = torch.ones_like(text_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    text = model.get_input_embeddings()(text_ids[keep])
    return adapter_gap.geometry(visual_tokens(model, pixel_values), text)


@torch.no_grad()
def lens_ids(model, input_ids: torch.Tensor, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the vocabulary id each visual token decodes to through the final norm and the LM head
    (the logit lens), as one (n * P,) tensor per layer."""
    out = model(input_ids=input_ids, pixel_values=pixel_values, output_hidden_states=True)
    norm = _language_model(model).norm
    mask = image_mask(model, input_ids)
    last = len(out.hidden_states) - 1  # already after the final norm
    return [model.lm_head(h[mask] if k == last else norm(h[mask])).argmax(-1)
            for k, h in enumerate(out.hidden_states)]
