"""The `mdsgap` command: the book's measurements as a pipeline for real models and datasets.

    mdsgap embed --model ViT-B-32 --pretrained openai --data 'shards/{00000..00099}.tar' --out run/
    mdsgap train-sae --run run/ --latents 4096 --k 32
    mdsgap score --run run/
    mdsgap report --run run/

`mdsgap <stage> --help` lists each stage's options; `torchrun --nproc_per_node=N -m -- mdsgap.pipeline.cli <stage> ...`
spreads a stage over N processes.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from mdsgap.clip.datasets import DatasetError
from mdsgap.pipeline import PipelineError, STAGES
from mdsgap.pipeline.shards import ManifestError

USER_ERRORS = (PipelineError, ManifestError, DatasetError, FileNotFoundError)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdsgap", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name, module in STAGES.items():
        mod = importlib.import_module(module)
        doc = (mod.__doc__ or name).strip()
        p = sub.add_parser(name, help=doc.splitlines()[0], description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(run=mod.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except USER_ERRORS as e:
        print(f"mdsgap {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
