"""mdsgap: measuring and leveraging the modality gap in vision-language models.

One package per part of the book (the README's layout table lists every module):
    world, experiment   the generated world with its ground truth; the setup every chapter shares
    clip                open_clip models, training the small CLIP, embeddings, zero-shot, CSV pairs
    gap                 the gap's metrics, the cone effect, shifting it, its robustness
    features            SAEs, NCL heads and the feature sets MDS scores
    attribution         the paper's MDS, the 2025-26 scores, the ground truth and the head-to-head
    edit                latent edits with the one control, groups, attacks, generation
    vlm                 the gap in an adapter VLM
    stats, plots        the one interval and table layout; the book's figures
    config, cache       self-checking config dataclasses; the on-disk cache
    pipeline            the `mdsgap` command: shards, embeddings, SAEs, scores, report at scale
    book                the book machinery (the `book` extra; never imported by the rest)
"""

__version__ = "0.7.1"
