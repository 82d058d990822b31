"""Executed notebooks made into pages, launchable clean notebooks, the status page."""
import nbformat
import pytest

from mdsgap import book
from mdsgap.book import publish

SOURCE = "S = experiment.ExperimentConfig.from_params(globals())\nEX = features.ExtractorsConfig.from_params(globals())\n"


def executed_notebook():
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = 'ci'\nn_seeds = 3")
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell("profile = 'tiny'\nn_seeds = 1\nsae_k = 2")
    injected.metadata["tags"] = ["injected-parameters"]
    work = nbformat.v4.new_code_cell("for _ in tqdm(range(3)): pass")
    work.outputs = [nbformat.v4.new_output("display_data", data={publish.WIDGET_MIME: {"model_id": "x"},
                                                                 "text/plain": "HBox()"}),
                    nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), params, injected, work]
    return nb


def run(**kw):
    base = dict(stem="01_x", profile="tiny", seconds=12.3, params={"profile": "tiny", "n_seeds": 1, "sae_k": 2},
                version="0.1.0", commit="abc1234")
    return publish.Run(**{**base, **kw})


def test_page_removes_the_injected_cell_folds_parameters_and_drops_widgets():
    nb = executed_notebook()
    page = publish.page(nb, run(), {"profile": "ci", "n_seeds": 3}, SOURCE)
    tags = [c.metadata.get("tags", []) for c in page.cells]
    assert not any("injected-parameters" in t for t in tags)
    assert "hide-cell" in tags[1] and "parameters" in tags[1]
    assert page.cells[2].cell_type == "markdown" and "| parameters |" in page.cells[2].source
    work = next(c for c in page.cells if c.cell_type == "code" and "tqdm" in c.source)
    assert [o.get("text") for o in work.outputs] == ["kept\n"]
    assert "Reproduce this page" in page.cells[-1].source and "01_x" in page.cells[-1].source
    assert page.metadata["mdsgap"]["profile"] == "tiny"
    assert len(nb.cells) == 4, "the executed notebook itself is left as it was"


def test_parameter_table_shows_values_used_by_group_and_bolds_the_profiles():
    table = publish.parameter_table({"profile": "ci", "n_seeds": 3}, SOURCE, {"n_seeds": 1, "sae_k": 2})
    rows = table.splitlines()
    assert len(rows) == 2 + 3  # header, rule, this chapter, ExperimentConfig, ExtractorsConfig (no sweep recipe in SOURCE)
    assert "**`n_seeds = 1`**" in rows[2] and "profile" not in rows[2]
    assert "`seed = 0`" in rows[3] and "**`sae_k = 2`**" in rows[4] and "`sae_latents = 256`" in rows[4]
    no_groups = publish.parameter_table({"n_seeds": 3}, "nothing shared", {})
    assert len(no_groups.splitlines()) == 3


def test_clean_notebook_has_the_install_cell_first_and_no_outputs():
    nb = executed_notebook()
    nb.cells[3].execution_count = 7
    clean = publish.clean(nb, "https://github.com/someone/fork")
    first = clean.cells[0]
    assert publish.INSTALL_TAG in first.metadata["tags"]
    assert "git+https://github.com/someone/fork" in first.source and "find_spec(\"mdsgap\")" in first.source
    assert all(c.outputs == [] and c.execution_count is None for c in clean.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in clean.cells)


def test_status_page_lists_every_run_and_the_total():
    text = publish.status_page([run(), run(stem="02_y", seconds=30.0)])
    assert "{doc}`01_x`" in text and "{doc}`02_y`" in text and "42 s" in text


def test_repository_url_takes_the_override_then_the_environment(monkeypatch):
    monkeypatch.delenv("MDSGAP_REPOSITORY", raising=False)
    assert book.repository_url().startswith("https://github.com/")
    monkeypatch.setenv("MDSGAP_REPOSITORY", "me/fork")
    assert book.repository_url() == "https://github.com/me/fork"
    assert book.repository_url("you/other") == "https://github.com/you/other"


def test_status_page_refuses_a_chapter_that_was_not_executed(tmp_path, monkeypatch):
    monkeypatch.setattr(book.build, "EXECUTED", tmp_path)
    with pytest.raises(book.BuildError, match="has not been executed"):
        book.write_status_page()


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    publish.write_atomic(tmp_path / "a.md", "hello")
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"] and (tmp_path / "a.md").read_text() == "hello"
