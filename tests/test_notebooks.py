"""Smoke test: every notebook executes end to end with the tiny profile, and errors name the cell."""
import json
import re

import pytest

from mdsgap import book


def glued(nb: dict) -> dict[str, str]:
    """{name: text} of the values a executed notebook glued (myst-nb's `glue` outputs)."""
    out = {}
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                out[name] = o.get("data", {}).get("application/papermill.record/text/plain", "")
    return out


def glue_references(nb: dict) -> set[str]:
    """Names the prose of a notebook refers to with {glue:...}`name` or {glue}`name`."""
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return set(re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", text))


@pytest.mark.slow
@pytest.mark.parametrize("stem", book.notebook_stems())
def test_notebook_runs_with_tiny_profile(stem, tmp_path):
    book.execute(stem, "tiny", out_dir=tmp_path)
    nb = json.loads((tmp_path / f"{stem}.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    missing = glue_references(nb) - set(glued(nb))
    assert glue_references(nb) and not missing, f"{stem}: the prose refers to values never glued: {missing}"


def test_every_notebook_has_one_parameters_cell_and_is_in_the_toc():
    import jupytext

    toc = (book.ROOT / "_toc.yml").read_text()
    for stem in book.notebook_stems():
        nb = jupytext.read(book.NOTEBOOKS / f"{stem}.py")
        assert book.declared_parameters(nb)
        assert f"file: {stem}" in toc


def test_failing_notebook_names_notebook_and_cell(tmp_path, monkeypatch):
    (tmp_path / "99_broken.py").write_text(
        '# %% tags=["parameters"]\nx = 1\n\n# %%\ny = 2\n\n# %%\nraise ValueError("boom")\n')
    monkeypatch.setattr(book.build, "NOTEBOOKS", tmp_path)
    with pytest.raises(book.BuildError, match=r"notebook 99_broken failed in cell \d+ .*ValueError: boom"):
        book.execute("99_broken", "tiny", out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "99_broken.ipynb").exists()


def test_profile_with_wrong_type_fails_before_executing(tmp_path, monkeypatch):
    (tmp_path / "99_typed.py").write_text('# %% tags=["parameters"]\nn_test = 10\n\n# %%\nprint(n_test)\n')
    monkeypatch.setattr(book.build, "NOTEBOOKS", tmp_path)
    with pytest.raises(book.BuildError, match="must be int"):
        book.execute("99_typed", "tiny", overrides={"n_test": "ten"}, out_dir=tmp_path / "out")


def test_unknown_profile_is_refused(capsys):
    assert book.main(["--profile", "fastest", "--no-html"]) == 2
    assert "Available profiles" in capsys.readouterr().err


@pytest.mark.slow
def test_chapter_one_runs_on_a_real_checkpoint_and_csv(tmp_path):
    """The real-data path: a checkpoint file and a CSV of image files, switched on by parameters alone."""
    from PIL import Image

    from mdsgap import world
    from mdsgap.clip import models

    clip = models.create_clip("mdsgap-tiny", seed=7)
    folder = models.save_checkpoint(clip.model, models.get_model_config("mdsgap-tiny"), tmp_path / "ckpt")
    pairs = world.generate(world.WorldConfig(), 24, seed=0, split="csv")
    (tmp_path / "img").mkdir()
    rows = ["filepath,title"]
    for i, (im, cap) in enumerate(zip(pairs.images, pairs.captions)):
        Image.fromarray(im).save(tmp_path / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{cap}")
    rows.append("img/missing.png,a lost circle")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    overrides = {"clip_pretrained": str(folder / models.WEIGHTS_FILE), "dataset_csv": str(tmp_path / "pairs.csv"),
                 "skip_bad_rows": True}
    book.execute("01_measuring_gap", "tiny", overrides=overrides, out_dir=tmp_path / "out")
    text = (tmp_path / "out" / "01_measuring_gap.ipynb").read_text()
    assert f"mdsgap-tiny ({folder / models.WEIGHTS_FILE})" in text  # the subject is the checkpoint
    assert "1 CSV row(s) skipped; the first, row 26: image file not found" in text


@pytest.mark.parametrize("profile", ["ci", "full", "tiny"])
def test_every_profile_type_checks_against_every_notebook(profile):
    """A profile that is not run here (full needs a big machine) is still checked, block by block."""
    import jupytext

    from mdsgap.book.params import profile_blocks

    for stem in book.notebook_stems():
        # As book.execute: the shared groups a notebook uses, besides what its cell declares.
        path = book.NOTEBOOKS / f"{stem}.py"
        declared = book.accepted_parameters(jupytext.read(path), path.read_text())
        common, own = profile_blocks(profile, stem)
        book.check_profile_types(stem, {**{k: v for k, v in common.items() if k in declared}, **own}, declared)


@pytest.mark.slow
def test_group_chapter_runs_on_a_real_checkpoint_and_a_tsv_with_a_group_column(tmp_path):
    """The group study's real path: any open_clip checkpoint, open_clip's tab-separated CSV, a group
    column and prompts per group, all by parameters."""
    from PIL import Image

    from mdsgap import world
    from mdsgap.clip import models
    from mdsgap.edit import groups

    clip = models.create_clip("mdsgap-tiny", seed=3)
    folder = models.save_checkpoint(clip.model, models.get_model_config("mdsgap-tiny"), tmp_path / "ckpt")
    pairs = world.generate(groups.GroupStudyConfig().balanced_world(), 40, seed=0, split="csv")
    (tmp_path / "img").mkdir()
    rows = ["filepath\ttitle\tgender"]
    for i, (im, cap) in enumerate(zip(pairs.images, pairs.captions)):
        Image.fromarray(im).save(tmp_path / "img" / f"{i}.png")
        rows.append(f"img/{i}.png\t{cap}\t{'woman' if pairs.factors.outline[i] == 'light' else 'man'}")
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n")
    overrides = {"clip_pretrained": str(folder / models.WEIGHTS_FILE), "dataset_csv": str(tmp_path / "pairs.tsv"),
                 "csv_sep": "\t", "group_column": "gender", "confounded": "woman",
                 "group_prompts": {"woman": ["a photo of a woman"], "man": ["a photo of a man"]}}
    book.execute("07_group_attribute", "tiny", overrides=overrides, out_dir=tmp_path / "out")
    values = glued(json.loads((tmp_path / "out" / "07_group_attribute.ipynb").read_text()))
    groups = {part.split(" ")[0] for part in values["per_group"].strip("'").split("; ")}
    assert groups == {"woman", "man"}   # each group of the TSV's gender column has its accuracy
    assert values["worse"].strip("'") in groups


@pytest.mark.parametrize("stem", book.notebook_stems())
def test_chapter_reads_as_prose_for_a_course(stem):
    """Code cells of at most 15 lines, no line over 100 characters, a "What you will learn" box, and two
    or more exercises, each with a folded solution the build executes (code between solution-start/end)."""
    import jupytext

    cells = jupytext.read(book.NOTEBOOKS / f"{stem}.py").cells
    long = [i for i, c in enumerate(cells) if c.cell_type == "code" and len(c.source.splitlines()) > 15]
    wide = [line[:40] for c in cells for line in c.source.splitlines() if len(line) > 100]
    assert not long and not wide, f"{stem}: cells over 15 lines {long}; lines over 100 characters {wide}"
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    fences = [i for i, c in enumerate(cells) if c.cell_type == "markdown"
              and sum(line.lstrip().startswith("```") for line in c.source.splitlines()) % 2]
    assert not fences, f"{stem}: markdown cells {fences} open a code fence they do not close"
    assert ":::{admonition} What you will learn" in text
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "{solution-start}" in c.source]
    assert text.count("{exercise}") >= 2 and len(starts) == text.count("{exercise}")
    for i in starts:
        j = next(k for k in range(i + 1, len(cells)) if "{solution-end}" in cells[k].source)
        assert any(c.cell_type == "code" for c in cells[i:j + 1]), f"{stem}: a solution without code"


@pytest.mark.slow
def test_chapter_three_shows_a_pipeline_run(tmp_path):
    """`run_dir` points chapter 3 at a run folder of the `mdsgap` command: its classes appear on the page."""
    from mdsgap.pipeline import cli
    from test_pipeline import make_run

    run = make_run(tmp_path / "run")
    assert cli.main(["train-sae", "--run", str(run), "--latents", "32", "--k", "4", "--steps", "30"]) == 0
    assert cli.main(["score", "--run", str(run)]) == 0
    book.execute("03_modality_dominance", "tiny", overrides={"run_dir": str(run)}, out_dir=tmp_path / "out")
    text = (tmp_path / "out" / "03_modality_dominance.ipynb").read_text()
    assert "360 pairs | 32 latents" in text and "class_ratio" in text


@pytest.mark.slow
def test_generation_chapter_draws_the_edits_with_a_stable_unclip_folder(tmp_path, tiny_unclip):
    """The generation chapter's real path: a local Stable unCLIP pipeline (tiny, random, built from configs
    with the embedding width of the chapter's CLIP) draws the class-edited embeddings."""
    folder = tiny_unclip(tmp_path, d=16)  # mdsgap-tiny's embedding width
    overrides = {"unclip_folder": str(folder), "ddim_steps": 2}
    book.execute("10_generation", "tiny", overrides=overrides, out_dir=tmp_path / "out")
    nb = json.loads((tmp_path / "out" / "10_generation.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "unclip.load_pipeline" in "".join(c["source"]))
    assert any("image/png" in o.get("data", {}) for o in cell["outputs"])  # the edits, drawn by unCLIP


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    """The tests' own small TSV in open_clip's format (with a group and a label column) and a randomly
    initialised checkpoint: what a reader brings to run a chapter on real data."""
    from PIL import Image

    from mdsgap import world
    from mdsgap.clip import models

    root = tmp_path_factory.mktemp("real")
    folder, second = (models.save_checkpoint(models.create_clip("mdsgap-tiny", seed=s).model,
                                             models.get_model_config("mdsgap-tiny"), root / f"ckpt{s}")
                      for s in (5, 6))
    pairs = world.generate(world.WorldConfig(), 40, seed=0, split="csv")
    (root / "img").mkdir()
    rows = ["filepath\ttitle\tgender\tlabel"]
    for i, (im, cap) in enumerate(zip(pairs.images, pairs.captions)):
        Image.fromarray(im).save(root / "img" / f"{i}.png")
        gender = "woman" if pairs.factors.outline[i] == "light" else "man"
        warm = "warm" if pairs.factors.colour[i] in ("red", "orange", "yellow") else "cool"
        rows.append(f"img/{i}.png\t{cap}\t{gender}\t{warm}")
    (root / "pairs.tsv").write_text("\n".join(rows) + "\n")
    common = {"clip_model": "mdsgap-tiny", "clip_pretrained": str(folder / models.WEIGHTS_FILE),
              "dataset_csv": str(root / "pairs.tsv")}
    extra = {**REAL_EXTRA, "08_adversarial": {**REAL_EXTRA["08_adversarial"],
                                              "second_pretrained": str(second / models.WEIGHTS_FILE)}}
    return common, extra


WORLD_ONLY = {"04_ground_truth", "05_why_the_gap", "06_closing_the_gap", "09_adapter_vlm"}
REAL_EXTRA = {  # what a chapter needs beyond the data and the model, by its own parameters
    "07_group_attribute": {"csv_sep": "\t", "group_column": "gender", "confounded": "woman",
                           "group_prompts": {"woman": ["a photo of a woman"], "man": ["a photo of a man"]}},
    "08_adversarial": {"csv_sep": "\t", "label_column": "label", "n_attack": 40,
                       "label_prompts": {"warm": ["a warm colour"], "cool": ["a cool colour"]}},
    "10_generation": {"label_column": "label", "n_generate": 40},
}


@pytest.mark.slow
@pytest.mark.parametrize("stem", book.notebook_stems())
def test_every_chapter_runs_on_a_tsv_and_a_checkpoint_or_says_in_one_line_what_it_needs(stem, real_data,
                                                                                        tmp_path):
    """Issue 21: a chapter either runs on a reader's data and model, or stops before any work (nothing in
    the cache) with the one line of `experiment.needs_world`; any other failure fails the test."""
    import os
    from pathlib import Path

    from mdsgap import experiment

    cache = Path(os.environ["MDSGAP_CACHE"])
    try:
        book.execute(stem, "tiny", overrides={**real_data[0], **real_data[1].get(stem, {})}, out_dir=tmp_path)
    except book.BuildError as e:
        message = str(e).splitlines()[0]
        assert stem in WORLD_ONLY, f"{stem} should run on real data: {message}"
        assert f"{experiment.NeedsWorld.__name__}: This chapter needs" in message, message
        assert "dataset_csv = ''" in message
        assert not any(cache.iterdir()), f"{stem} did work before it stopped: {sorted(cache.iterdir())}"
        return
    nb = json.loads((tmp_path / f"{stem}.ipynb").read_text())
    missing = glue_references(nb) - set(glued(nb))
    assert not missing, f"{stem} on real data: the prose refers to values never glued: {missing}"
