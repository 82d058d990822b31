"""The gap in an adapter-based VLM (chapter 9).

    model         a tiny LLaVA-style VLM on the world: vocabulary, projector, language model, training
                  (this package's surface: `vlm.fit`, `vlm.VLMConfig`, ...)
    adapter_gap   the gap and text dominance inside the VLM
    llava         the same measurements on a real LLaVA (transformers)
"""
from mdsgap.vlm.model import (BOS, EOS, PAD, QUESTIONS, SPECIALS, AdapterVLM, RecipeConfig, TinyLM, VLMConfig, Vocab,
                              answer_mask, answers, fit, patch_tokens, projector, question_texts,
                              stages, train, words)
