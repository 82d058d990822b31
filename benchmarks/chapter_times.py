"""Each chapter's seconds in a build beside a baseline build run in the same session, with their ratio.

    # a baseline: a clean checkout of the commit to compare against, executed with its own cold cache
    git worktree add /tmp/mdsgap-base <commit>
    (cd /tmp/mdsgap-base && PYTHONPATH=$PWD MDSGAP_CACHE=$PWD/.cache/mdsgap \
        /path/to/mdsgap/.venv/bin/python -m mdsgap.book --profile ci --no-html)
    # then this checkout, cold as well (rm -rf .cache/mdsgap), and:
    .venv/bin/python benchmarks/chapter_times.py /tmp/mdsgap-base/book book

Speed on a shared machine varies about twofold from day to day, so only builds run side by side in one
session compare. Reads the executed chapters (`<book>/<stem>.ipynb`): papermill's duration of the whole
notebook and of its slowest cell, whose first line names it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def chapter_times(book: Path) -> dict[str, dict]:
    """{stem: {"seconds", "cell seconds", "cell"}} of the executed chapters in a book folder."""
    out = {}
    for path in sorted(book.glob("[0-9]*.ipynb")):
        nb = json.loads(path.read_text())
        seconds = nb["metadata"].get("papermill", {}).get("duration")
        if seconds is None:
            continue
        cells = [(c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0, c) for c in nb["cells"]
                 if c["cell_type"] == "code"]
        slow, cell = max(cells, key=lambda t: t[0], default=(0.0, {"source": ""}))
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        first = next((line.strip() for line in source.splitlines() if line.strip() and
                      not line.startswith("#")), "")
        out[path.stem] = {"seconds": float(seconds), "cell seconds": float(slow), "cell": first[:48]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline", type=Path, help="book folder of the baseline build")
    ap.add_argument("build", type=Path, help="book folder of the build to compare")
    args = ap.parse_args(argv)
    base, new = chapter_times(args.baseline), chapter_times(args.build)
    if not base or not new:
        empty = args.baseline if not base else args.build
        print(f"error: no executed chapters in {empty}: build it first (python -m mdsgap.book --no-html)",
              file=sys.stderr)
        return 2
    print(f"{'chapter':28s} {'baseline s':>10s} {'build s':>8s} {'ratio':>6s}   slowest cell now (s)")
    for stem in sorted(set(base) | set(new)):
        b, n = base.get(stem, {}).get("seconds"), new.get(stem, {}).get("seconds")
        ratio = f"{n / b:6.2f}" if b and n else "     -"
        cell = f"{new[stem]['cell seconds']:6.1f}  {new[stem]['cell']}" if stem in new else ""
        print(f"{stem:28s} {b or float('nan'):10.1f} {n or float('nan'):8.1f} {ratio}   {cell}")
    common = sorted(set(base) & set(new))
    tb, tn = sum(base[s]["seconds"] for s in common), sum(new[s]["seconds"] for s in common)
    print(f"{'chapters in both':28s} {tb:10.1f} {tn:8.1f} {tn / tb:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
