"""A short summary of a run: model and data, the SAE and its metrics, class sizes, an MDS histogram, top examples.

    mdsgap report --run RUN [--format md|html]

Writes RUN/report.md (with the histogram beside it, RUN/report-mds.png) or a self-contained RUN/report.html.
`load_run(RUN)` gives a notebook the same pieces: manifest, scores table and SAE metrics.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mdsgap.attribution import dominance
from mdsgap.pipeline import shards
from mdsgap.pipeline import PipelineError
from mdsgap.pipeline.score import scores_path

SHOWN_FEATURES = 3
"""Features shown per class in the top examples."""
SHOWN_EXAMPLES = 5
"""Keys shown per feature and side."""


def add_arguments(p) -> None:
    p.add_argument("--run", dest="run_dir", metavar="RUN", required=True, type=Path,
                   help="run folder with scores (`mdsgap score` first)")
    p.add_argument("--sae", default="sae", help="the SAE's subfolder (train-sae's --out-name; default sae)")
    p.add_argument("--format", choices=("md", "html"), default="md", help="Markdown or HTML (default md)")


def load_run(run_dir, sae: str = "sae") -> dict:
    """A finished run's pieces for a notebook: manifest, scores (a DataFrame, top-example columns as lists),
    score_settings (thresholds, variants), sae (config and metrics from sae.json)."""
    run_dir = Path(run_dir)
    manifest = shards.load_manifest(run_dir, verify=False)
    sae_json = run_dir / sae / "sae.json"
    if not sae_json.is_file():
        hint = "" if sae == "sae" else f" --out-name {sae}"
        raise PipelineError(f"{run_dir / sae} holds no finished SAE: run `mdsgap train-sae --run {run_dir}{hint}` "
                            "first.")
    path = scores_path(run_dir, sae)
    if not path.is_file():
        hint = "" if sae == "sae" else f" --sae {sae}"
        raise PipelineError(f"{run_dir} has no {path.name}: run `mdsgap score --run {run_dir}{hint}` first.")
    scores = pd.read_csv(path)
    for col in [c for c in scores.columns if c.startswith("top_")]:
        scores[col] = scores[col].map(json.loads)
    return {"manifest": manifest, "scores": scores, "sae": json.loads(sae_json.read_text()),
            "score_settings": json.loads(scores_path(run_dir, sae, ".json").read_text())}


def histogram_png(scores: pd.DataFrame, settings: dict) -> bytes | None:
    """PNG of the MDS histogram of every variant (latents firing on at least min_pairs pairs), with the first
    variant's thresholds; None without matplotlib."""
    try:  # a bare Figure: no pyplot state, so a notebook's own backend and figures are left alone
        from matplotlib.figure import Figure
    except ImportError:
        return None
    live = scores["fires_pair"] >= settings["min_pairs"]
    fig = Figure(figsize=(6, 3.2), dpi=110)
    ax = fig.subplots()
    bins = np.linspace(0, 1, 41)
    for v in settings["variants"]:
        ax.hist(scores.loc[live, f"mds_{v}"].dropna(), bins=bins, histtype="step", linewidth=1.5, label=v)
    first = settings["variants"][0]
    for t in settings["thresholds"][first]:
        if np.isfinite(t):
            ax.axvline(t, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="MDS (1: image only, 0: caption only)", ylabel="latents",
           title=f"MDS of {int(live.sum())} live latents (dashed: {first} thresholds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def sections(run: dict) -> list[tuple[str, list]]:
    """The report as (heading, blocks); a block is a string (paragraph), a DataFrame (table) or ("image", alt)."""
    m, s, sc, st = run["manifest"], run["sae"], run["scores"], run["score_settings"]
    first = st["variants"][0]
    data = pd.DataFrame({"": ["model", "dataset", "pairs", "dimension", "shards"],
                         "value": [shards.describe_model(m["model"]), json.dumps(m["dataset"]),
                                   f"{m['n_pairs']:,}", m["dim"], len(m["shards"])]})
    metrics = pd.DataFrame(s["metrics"]).T.rename_axis("modality").reset_index().round(4)
    class_cols = [c for c in sc.columns if c.startswith("class_")]
    order = [dominance.IMGD, dominance.TXTD, dominance.CMD, dominance.RARE, dominance.DEAD]
    counts = pd.DataFrame({c.removeprefix("class_"): sc[c].value_counts() for c in class_cols}).reindex(order)
    counts = counts.fillna(0).astype(int).rename_axis("class").reset_index()
    lo, hi = st["thresholds"][first]
    examples = []
    for cls in (dominance.IMGD, dominance.TXTD, dominance.CMD):
        top = sc[sc[f"class_{first}"] == cls].nlargest(SHOWN_FEATURES, "fires_pair")
        for _, r in top.iterrows():
            examples.append({"class": cls, "feature": int(r.feature),
                             f"MDS ({first})": round(float(r[f"mds_{first}"]), 3),
                             "fires (image / caption)": f"{r.fires_image} / {r.fires_text}",
                             "top images": ", ".join(map(str, r.top_image[:SHOWN_EXAMPLES])),
                             "top captions": ", ".join(map(str, r.top_text[:SHOWN_EXAMPLES]))})
    return [
        ("Embeddings", [data]),
        ("SAE", [f"{s['description']}, trained {s['steps']:,} steps on {s['d_in']}-dimensional embeddings "
                 f"({s['world_size']} process{'es' if s['world_size'] > 1 else ''}).", metrics]),
        ("Classes", [f"Per class rule, the number of latents (of {len(sc):,}). MDS rules: mean ± {st['k_std']} std of "
                     f"the latents firing on at least {st['min_pairs']} pairs ({first}: TxtD below {lo:.3f}, ImgD "
                     f"above {hi:.3f}); bimodal: the energy score's band {st['bimodal_band']}.", counts]),
        ("MDS histogram", [("image", "MDS histogram")]),
        ("Top examples", [f"The {SHOWN_FEATURES} most often firing latents of each {first} class, with the keys of the "
                          f"pairs whose image or caption activates them most (captions are not stored: see the "
                          f"dataset for a key's text).", pd.DataFrame(examples)]),
    ]


def _md_table(df: pd.DataFrame) -> str:
    cells = [[str(c) for c in df.columns]] + [[str(v).replace("|", "\\|") for v in row] for row in df.to_numpy()]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "|" + "---|" * len(df.columns), *lines[1:]])


def render(title: str, parts: list, fmt: str, png: bytes | None, png_name: str) -> str:
    """The report's text in Markdown or HTML (the PNG beside the Markdown, embedded in the HTML)."""
    out = [f"# {title}" if fmt == "md" else f"<h1>{html.escape(title)}</h1>"]
    for heading, blocks in parts:
        out.append(f"## {heading}" if fmt == "md" else f"<h2>{html.escape(heading)}</h2>")
        for b in blocks:
            if isinstance(b, pd.DataFrame):
                out.append(_md_table(b) if fmt == "md" else b.to_html(index=False, border=0))
            elif isinstance(b, tuple):
                if png is None:
                    out.append("(no histogram: install matplotlib)")
                elif fmt == "md":
                    out.append(f"![{b[1]}]({png_name})")
                else:
                    out.append(f'<img alt="{b[1]}" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
            else:
                out.append(b if fmt == "md" else f"<p>{html.escape(b)}</p>")
    if fmt == "md":
        return "\n\n".join(out) + "\n"
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}" \
            "td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}"
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def report(run_dir, fmt: str = "md", sae: str = "sae") -> Path:
    """Write RUN/report.md (and report-mds.png) or RUN/report.html; returns its path."""
    run_dir = Path(run_dir)
    run = load_run(run_dir, sae)
    png = histogram_png(run["scores"], run["score_settings"])
    suffix = "" if sae == "sae" else f"-{sae}"
    png_name = f"report{suffix}-mds.png"
    if png is not None and fmt == "md":
        shards.write_atomic_bytes(run_dir / png_name, png)
    path = run_dir / f"report{suffix}.{fmt}"
    text = render(f"mdsgap run {run_dir.resolve().name}", sections(run), fmt, png, png_name)
    shards.write_atomic_bytes(path, text.encode())
    return path


def run(args) -> int:
    path = report(args.run_dir, args.format, args.sae)
    print(path)
    return 0
