"""Build the book: jupytext -> papermill (with a profile) -> Jupyter Book, with timings.

    python -m mdsgap.book --profile ci            # every notebook, then the HTML
    python -m mdsgap.book --profile tiny --only 01_measuring_gap --no-html

Each `notebooks/<stem>.py` is converted to a notebook, executed with the profile's parameters and
made into a page (`mdsgap.book.publish.page`) at `book/<stem>.ipynb`; the launchable clean notebooks and
sources go to `book/launch/`, a status page to `book/status.md`, and Jupyter Book builds `_build/html`
from `book/` with execution off and warnings as errors. A failing cell stops the build with the
notebook's name, the cell and the error.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from mdsgap import __version__
from mdsgap.book import publish

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
EXECUTED = BOOK
"""Where executed chapters go: beside the prose, so pages have clean URLs (`/<stem>.html`)."""
LAUNCH = BOOK / "launch"
CONFIG = ROOT / "_config.yml"


class BuildError(RuntimeError):
    pass


def notebook_stems() -> list[str]:
    """Notebook sources in book order (file names start with their chapter number)."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.py"))


def declared_parameters(nb) -> dict:
    """Evaluate the `parameters` cell in isolation to get its names, defaults and types."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise BuildError(f"a notebook needs exactly one cell tagged 'parameters', found {len(cells)}")
    scope: dict = {}
    exec(compile(cells[0].source, "<parameters>", "exec"), {}, scope)
    return {k: v for k, v in scope.items() if not k.startswith("_")}


def accepted_parameters(nb, source: str) -> dict:
    """Names and defaults a notebook takes: its parameters cell, plus every shared group its source uses
    (`params.shared_groups`: the world and CLIP settings, the feature extractors, the sweep recipe)."""
    from mdsgap.book.params import shared_groups

    shared = {k: v for _, _, defaults in shared_groups(source) for k, v in defaults.items()}
    return {**shared, **declared_parameters(nb)}


def check_profile_types(stem: str, params: dict, declared: dict) -> None:
    """Profile values must be parameters the notebook declares, of the declared default's type."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise BuildError(f"{stem}: the profile sets unknown parameter(s) {unknown}; the notebook declares "
                         f"{sorted(declared)}")
    from mdsgap.config import matches

    for name, value in params.items():
        default = declared[name]
        if default is None or value is None:
            continue
        if not matches(value, type(default)):
            raise BuildError(f"{stem}: parameter {name!r} must be {type(default).__name__} like its default "
                             f"{default!r}, but the profile gives {type(value).__name__} {value!r}")


class _AcceptedParameters(logging.Filter):
    """Drops papermill's "Passed unknown parameter" warning for the parameters a chapter accepts through a
    shared group (`params.GROUPS`: its parameters cell names the group, not each field); a parameter the
    chapter does not accept still warns."""

    def __init__(self, accepted: set[str]):
        super().__init__()
        self.accepted = accepted

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        prefix = "Passed unknown parameter: "
        return not (msg.startswith(prefix) and msg[len(prefix):] in self.accepted)


def execute(stem: str, profile: str, overrides: dict | None = None, out_dir: Path = EXECUTED) -> float:
    """Convert and execute one notebook into out_dir/<stem>.ipynb; returns seconds taken."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from mdsgap.book.params import profile_blocks

    nb = jupytext.read(NOTEBOOKS / f"{stem}.py")
    declared = accepted_parameters(nb, (NOTEBOOKS / f"{stem}.py").read_text())
    common, own = profile_blocks(profile, stem)
    # Shared parameters go to the notebooks that declare them; a notebook's own block must all be declared.
    params = {**{k: v for k, v in common.items() if k in declared}, **own, **(overrides or {})}
    check_profile_types(stem, params, declared)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f".{stem}.source.ipynb"
    out = out_dir / f"{stem}.ipynb"
    tmp_out = out_dir / f".{stem}.partial.ipynb"
    jupytext.write(nb, source)
    start = time.perf_counter()
    quiet = _AcceptedParameters(set(declared))
    logging.getLogger("papermill").addFilter(quiet)
    try:
        papermill.execute_notebook(str(source), str(tmp_out), parameters=params, cwd=str(NOTEBOOKS),
                                   kernel_name="python3", progress_bar=False, log_output=False)
    except PapermillExecutionError as e:
        raise BuildError(f"notebook {stem} failed in cell {e.cell_index} (execution count {e.exec_count}): "
                         f"{e.ename}: {e.evalue}\n  partial output kept in {tmp_out}") from None
    finally:
        logging.getLogger("papermill").removeFilter(quiet)
        source.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    _write_page(tmp_out, out, publish.Run(stem, profile, seconds, params, __version__, publish.commit(ROOT)),
                declared_parameters(nb), (NOTEBOOKS / f"{stem}.py").read_text())
    return seconds


def _write_page(executed: Path, out: Path, run, declared: dict, source: str) -> None:
    """The executed notebook made into its page, written through a temporary name."""
    import nbformat

    nb = publish.page(nbformat.read(executed, as_version=4), run, declared, source)
    nbformat.write(nb, executed)
    os.replace(executed, out)


def repository_url(override: str | None = None) -> str:
    """The book's GitHub repository: `--repository OWNER/NAME` or $MDSGAP_REPOSITORY, else `_config.yml`'s."""
    import yaml

    name = override or os.environ.get("MDSGAP_REPOSITORY")
    if name:
        return name if name.startswith("https://") else f"https://github.com/{name}"
    return yaml.safe_load(CONFIG.read_text())["repository"]["url"]


def write_launch_notebooks(repo_url: str, stems: list[str] | None = None) -> None:
    """Clean notebooks (install cell, no outputs) and Jupytext sources of the chapters, in book/launch/."""
    import jupytext
    import nbformat

    LAUNCH.mkdir(parents=True, exist_ok=True)
    for stem in stems or notebook_stems():
        src = NOTEBOOKS / f"{stem}.py"
        nb = publish.clean(jupytext.read(src), repo_url)
        publish.write_atomic(LAUNCH / f"{stem}.ipynb", nbformat.writes(nb))
        publish.write_atomic(LAUNCH / f"{stem}.py", src.read_text())


def write_status_page() -> None:
    """book/status.md from the runs recorded in the executed chapters."""
    import nbformat

    runs = []
    for stem in notebook_stems():
        path = EXECUTED / f"{stem}.ipynb"
        if not path.exists():
            raise BuildError(f"chapter {stem} has not been executed ({path} is missing): run without "
                             "--no-execute, or with --only " + stem)
        meta = nbformat.read(path, as_version=4).metadata.get("mdsgap")
        if meta is None:
            raise BuildError(f"{path} was executed by an older build (no run record): execute it again.")
        runs.append(publish.Run(**meta))
    publish.write_atomic(BOOK / "status.md", publish.status_page(runs))


def book_config(repo_url: str) -> Path:
    """_config.yml with the repository set (forks publish without editing it), under _build/."""
    import yaml

    cfg = yaml.safe_load(CONFIG.read_text())
    cfg.setdefault("repository", {})["url"] = repo_url
    path = ROOT / "_build" / "_config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    publish.write_atomic(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def build_html(builder: str = "html", repository: str | None = None) -> None:
    import shutil

    repo_url = repository_url(repository)
    shutil.rmtree(ROOT / "_build" / builder, ignore_errors=True)  # no stale pages from an older layout
    write_launch_notebooks(repo_url)
    write_status_page()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(BOOK), "--config", str(book_config(repo_url)), "--toc", str(ROOT / "_toc.yml"),
           "--path-output", str(ROOT), "--builder", builder, "--all", "-W", "-n", "--keep-going"]
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        raise BuildError(f"Jupyter Book failed (exit {result.returncode}); its warnings are printed above.")


def main(argv=None) -> int:
    from mdsgap.book.params import list_profiles

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="ci", help=f"parameter profile: {list_profiles()}")
    ap.add_argument("--only", nargs="*", help="notebook stems to execute (default: all)")
    ap.add_argument("--no-html", action="store_true", help="execute notebooks only")
    ap.add_argument("--no-execute", action="store_true", help="build the HTML from already executed notebooks")
    ap.add_argument("--repository", help="GitHub OWNER/NAME the buttons and install cells point at "
                                         "(default: $MDSGAP_REPOSITORY, else _config.yml's repository.url)")
    args = ap.parse_args(argv)
    if args.profile not in list_profiles():
        print(f"error: unknown profile {args.profile!r}. Available profiles: {list_profiles()}", file=sys.stderr)
        return 2
    stems = notebook_stems()
    if args.only:
        unknown = sorted(set(args.only) - set(stems))
        if unknown:
            print(f"error: unknown notebook(s) {unknown}. Available: {stems}", file=sys.stderr)
            return 2
        stems = [s for s in stems if s in args.only]
    os.environ.setdefault("MDSGAP_CACHE", str(ROOT / ".cache" / "mdsgap"))
    total = time.perf_counter()
    try:
        if not args.no_execute:
            for stem in stems:
                print(f"[book] executing {stem} (profile {args.profile}) ...", flush=True)
                print(f"[book] {stem}: {execute(stem, args.profile):.1f} s", flush=True)
        if not args.no_html:
            build_html(repository=args.repository)
    except BuildError as e:
        print(f"[book] error: {e}", file=sys.stderr)
        return 1
    print(f"[book] done in {time.perf_counter() - total:.1f} s; open {ROOT / '_build' / 'html' / 'index.html'}")
    return 0



def glue(name: str, value) -> None:
    """Glue a value for the prose ({glue:text}`name:.2f`), as a plain Python number or string.

    numpy scalars are converted first: their repr (`np.float64(0.8)`) cannot be formatted by myst-nb.
    """
    from myst_nb import glue as _glue

    if hasattr(value, "item"):
        value = value.item()
    _glue(name, value, display=False)
