"""The CLIP a chapter studies: open_clip models, training the small CLIP on the world, embeddings,
zero-shot and retrieval, and real pairs from a CSV.

    models       open_clip models: names, tags, checkpoints, the small configs (model_configs/)
    training     training the small CLIP on the world (and the sweep CLIPs of chapter 5)
    embeddings   embeddings of pairs, batched and cached
    evaluation   zero-shot classification and retrieval
    datasets     real pairs from a CSV of image paths and captions (open_clip's format)
"""
