"""mdsgap: measuring and leveraging the modality gap in vision-language models.

One concept per module:
    world             the synthetic image-caption world with ground-truth factors
    models            open_clip models: names, tags, checkpoints, the small configs
    training          training the small CLIP on the world
    embeddings        embeddings of pairs, batched and cached
    datasets          real pairs from a CSV of image paths and captions
    experiment        the parameters and setup every chapter shares
    gap               modality-gap metrics (L2M, L2I, RMG, cone, separability)
    evaluation        zero-shot classification and retrieval
    sae, ncl          feature extractors: sparse autoencoders, non-negative contrastive heads
    features          the feature sets MDS scores, behind one interface
    dominance         the Modality Dominance Score (MDS) and its classes ImgD, TxtD, CMD
    interpretability  EmbSim and WinRate
    groundtruth       checking MDS classes against the world's factors
    stats             the one interval over seeds and the one bootstrap
    control           class edits against matched random latent sets: the one control and verdict
    cache, params, plots, book   the machinery: cache, notebook parameters, figures, the book build
"""

__version__ = "0.4.0"
