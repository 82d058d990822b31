"""The `mdsgap` command's stages, each a module with `add_arguments(parser)` and `run(args)`.

    mdsgap embed      an open_clip model over a CSV/TSV or webdataset shards -> float16 embedding shards
    mdsgap train-sae  an SAE streamed from the embedding shards, with checkpoints
    mdsgap score      per-feature MDS variants, attribution classes and top examples -> a table
    mdsgap report     a Markdown/HTML summary of a run

Stages chain through files in one run folder; each resumes where a killed run stopped, and runs the same
under `torchrun` (ranks split the work, `mdsgap.pipeline.distributed`) as in one process.
"""


class PipelineError(ValueError):
    """Bad input to a stage: the message names the problem and the fix (the command prints it, no traceback)."""


STAGES = {
    "embed": "mdsgap.pipeline.embed",
    "train-sae": "mdsgap.pipeline.train",
    "score": "mdsgap.pipeline.score",
    "report": "mdsgap.pipeline.report",
}
"""Subcommand name -> module."""
