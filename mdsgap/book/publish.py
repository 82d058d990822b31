"""Turn executed notebooks into book pages, and chapter sources into notebooks a reader can launch.

`page` edits an executed notebook for the HTML: papermill's injected cell goes, the parameters cell is
folded behind a table of the values used, progress-bar widgets are dropped, and a "Reproduce this page"
note (profile, commit, run time, downloads) closes the chapter. `clean` builds the notebook that the
Colab and Binder buttons open: no outputs, a first cell that installs `mdsgap` where it is missing.
`status_page` lists every chapter's run.
"""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import nbformat

from mdsgap.book.params import shared_groups

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
INSTALL_TAG = "install-mdsgap"

@dataclasses.dataclass(frozen=True)
class Run:
    """What a page says about how it was made."""

    stem: str
    profile: str
    seconds: float
    params: dict
    """The values papermill injected (the profile's and any overrides)."""
    version: str
    commit: str


def commit(root: Path) -> str:
    """Short commit of the working tree, marked '+local changes' when it differs from that commit; 'unknown'
    outside git."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" +local changes" if dirty else "")


def _fmt(name: str, value, injected: dict) -> str:
    text = f"`{name} = {value!r}`"
    return f"**{text}**" if name in injected else text


def parameter_table(declared: dict, source: str, injected: dict) -> str:
    """A short Markdown table of the values a chapter ran with, one row per group; values the profile set
    are in bold."""
    own = {k: injected.get(k, v) for k, v in declared.items() if k != "profile"}
    rows = [("this chapter", "its parameters cell", own)]
    for label, home, defaults in shared_groups(source):
        vals = {k: injected.get(k, v) for k, v in defaults.items() if k not in declared}
        rows.append((label, f"`{home}`", vals))
    lines = ["| parameters | defaults in | values used |", "|---|---|---|"]
    for label, home, vals in rows:
        cells = ", ".join(_fmt(k, v, injected) for k, v in vals.items()).replace("|", "\\|")
        lines.append(f"| {label} | {home} | {cells} |")
    return "\n".join(lines)


def _is_widget(output) -> bool:
    return WIDGET_MIME in output.get("data", {})


def page(nb, run: Run, declared: dict, source: str, downloads: str = "launch") -> nbformat.NotebookNode:
    """The executed notebook as the book shows it (a new notebook; `nb` is left as it was)."""
    nb = nbformat.from_dict(nb)
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _is_widget(o)]
        cells.append(cell)
        if "parameters" in tags:
            cell.metadata["tags"] = sorted(set(tags) | {"hide-cell"})
            table = parameter_table(declared, source, run.params)
            cells.append(nbformat.v4.new_markdown_cell(
                f"This page ran with the `{run.profile}` profile; values it set are in bold.\n\n{table}"))
    cells.append(nbformat.v4.new_markdown_cell(reproduce_note(run, downloads)))
    nb.cells = cells
    nb.metadata["mdsgap"] = dataclasses.asdict(run)
    return nb


def reproduce_note(run: Run, downloads: str = "launch") -> str:
    """The note that closes every chapter: how this page was made and how to make it again."""
    return "\n".join([
        ":::{admonition} Reproduce this page",
        ":class: note",
        f"Executed with the `{run.profile}` profile by mdsgap {run.version} (commit `{run.commit}`) in "
        f"{run.seconds:.0f} s; the parameters are in the table at the top of the page.",
        "",
        f"- Again, from a clone: `python -m mdsgap.book --profile {run.profile} --only {run.stem}`.",
        f"- Download {{download}}`the clean notebook <{downloads}/{run.stem}.ipynb>` (no outputs; it installs "
        f"mdsgap when it is missing) or {{download}}`its Jupytext source <{downloads}/{run.stem}.py>`; the "
        "executed notebook is under the download button at the top of the page.",
        "- Or open it in Colab or Binder from the rocket button at the top of the page.",
        ":::",
    ])


def install_cell(repo_url: str) -> nbformat.NotebookNode:
    """First cell of a launchable notebook: installs mdsgap from the repository when it is not importable."""
    spec = f"mdsgap[book] @ git+{repo_url}"
    cell = nbformat.v4.new_code_cell(
        "# Install mdsgap where it is missing (Colab, a fresh Binder or Jupyter).\n"
        "import importlib.util\n"
        "\n"
        "if importlib.util.find_spec(\"mdsgap\") is None:\n"
        f"    %pip install --quiet \"{spec}\"")
    cell.metadata["tags"] = [INSTALL_TAG]
    return cell


def clean(source_nb, repo_url: str) -> nbformat.NotebookNode:
    """A launchable notebook from a chapter's source: the install cell first, then the chapter, no outputs."""
    nb = nbformat.from_dict(source_nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells.insert(0, install_cell(repo_url))
    nb.metadata.pop("jupytext", None)
    return nb


def status_page(runs: list[Run]) -> str:
    """Markdown page listing every chapter's profile, run time, version and commit."""
    lines = ["# Build status", "",
             "How each chapter of this build was executed (papermill, before Jupyter Book renders it).", "",
             "| chapter | profile | seconds | mdsgap | commit |", "|---|---|---:|---|---|"]
    for r in runs:
        lines.append(f"| {{doc}}`{r.stem}` | `{r.profile}` | {r.seconds:.0f} | {r.version} | `{r.commit}` |")
    total = sum(r.seconds for r in runs)
    lines += ["", f"All chapters together: {total:.0f} s ({total / 60:.1f} min)."]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary name, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
