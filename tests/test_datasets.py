import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from mdsgap import experiment, world
from mdsgap.clip import datasets, embeddings, models


@pytest.fixture
def csv_dir(tmp_path):
    """A small real-format dataset: world images saved as PNG files plus a CSV."""
    pairs = world.generate(world.WorldConfig(), 6, seed=0)
    (tmp_path / "img").mkdir()
    for i, im in enumerate(pairs.images):
        Image.fromarray(im).save(tmp_path / "img" / f"{i}.png")
    rows = ["filepath,title"] + [f"img/{i}.png,{c}" for i, c in enumerate(pairs.captions)]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    return tmp_path, pairs


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loads_relative_paths(csv_dir):
    folder, pairs = csv_dir
    d = datasets.load_csv(folder / "pairs.csv")
    assert len(d) == 6 and d.captions == pairs.captions
    assert np.array_equal(np.asarray(d.load_images([2])[0]), pairs.images[2])


def test_missing_csv_and_columns(tmp_path):
    with pytest.raises(datasets.DatasetError, match="not found"):
        datasets.load_csv(tmp_path / "nope.csv")
    p = write(tmp_path / "x.csv", ["path,caption", "a.png,hi"])
    with pytest.raises(datasets.DatasetError, match=r"missing column\(s\) \['filepath', 'title'\]; found \['path', 'caption'\]"):
        datasets.load_csv(p)


def test_a_missing_kept_column_names_the_parameter_that_picks_it(csv_dir):
    folder, _ = csv_dir
    with pytest.raises(datasets.DatasetError, match=r"\['group'\].*Set group_column to the CSV's group column"):
        datasets.load_csv(folder / "pairs.csv", keep=("group",), hint="set group_column to the CSV's group column")


def test_a_chapter_that_needs_the_world_says_so_in_one_line_on_a_csv():
    experiment.needs_world(experiment.ExperimentConfig(), "the world's factors")   # on the world: nothing to say
    with pytest.raises(experiment.NeedsWorld, match="needs the world's factors.*dataset_csv = ''") as e:
        experiment.needs_world(experiment.ExperimentConfig(dataset_csv="pairs.csv"), "the world's factors")
    assert "\n" not in str(e.value)


def test_missing_image_names_the_row(csv_dir):
    folder, _ = csv_dir
    p = write(folder / "bad.csv", ["filepath,title", "img/0.png,a circle", "img/missing.png,a square"])
    with pytest.raises(datasets.DatasetError, match=r"row 3: image file not found"):
        datasets.load_csv(p)


def test_unreadable_image_names_the_row(csv_dir):
    folder, _ = csv_dir
    (folder / "img" / "broken.png").write_bytes(b"not an image")
    p = write(folder / "bad.csv", ["filepath,title", "img/broken.png,a circle"])
    with pytest.raises(datasets.DatasetError, match=r"row 2: image cannot be read"):
        datasets.load_csv(p)


def test_malformed_rows_name_the_row(csv_dir):
    folder, _ = csv_dir
    p = write(folder / "bad.csv", ["filepath,title", "img/0.png,a circle", "img/1.png,a,b,c"])
    with pytest.raises(datasets.DatasetError, match=r"row 3: has 4 fields, expected 2"):
        datasets.load_csv(p)
    p = write(folder / "bad2.csv", ["filepath,title", "img/0.png"])
    with pytest.raises(datasets.DatasetError, match=r"row 2: has 1 fields, expected 2"):
        datasets.load_csv(p)
    p = write(folder / "bad3.csv", ["filepath,title", "img/0.png,"])
    with pytest.raises(datasets.DatasetError, match=r"row 2: empty 'title'"):
        datasets.load_csv(p)


def test_skip_bad_counts_what_was_skipped(csv_dir):
    folder, _ = csv_dir
    p = write(folder / "mixed.csv", ["filepath,title", "img/0.png,a circle", "img/missing.png,a square",
                                     "img/1.png,", "img/2.png,a cross"])
    d = datasets.load_csv(p, skip_bad=True)
    assert len(d) == 2 and [row for row, _ in d.skipped] == [3, 4]


def test_csv_goes_through_the_same_embedding_path(csv_dir):
    folder, pairs = csv_dir
    clip = models.create_clip("mdsgap-tiny")
    s = experiment.ExperimentConfig(clip_model="mdsgap-tiny", dataset_csv=str(folder / "pairs.csv"), n_test=10)
    data = experiment.test_data(s, clip, progress=False)
    assert data.factors is None and data.x.shape == (6, 16)
    # the same images from arrays give the same embeddings as from PNG files
    x_world, y_world = embeddings.encode_pairs(clip, pairs, progress=False)
    assert torch.allclose(data.x, x_world, atol=1e-4) and torch.allclose(data.y, y_world)


def test_open_clip_tsv_files_load_without_a_separator(csv_dir):
    folder, pairs = csv_dir
    tsv = (folder / "pairs.csv").read_text().replace(",", "\t")
    (folder / "pairs.tsv").write_text(tsv)
    (folder / "tabs.csv").write_text(tsv)  # open_clip's default: tabs, whatever the suffix
    for name in ("pairs.tsv", "tabs.csv"):
        assert datasets.load_csv(folder / name).captions == pairs.captions
        s = experiment.ExperimentConfig(clip_model="mdsgap-tiny", dataset_csv=str(folder / name), n_test=10)
        loaded, _ = experiment.load_pairs(s)
        assert loaded.captions == pairs.captions
    assert datasets.load_csv(folder / "pairs.csv", sep=",").captions == pairs.captions
    with pytest.raises(datasets.DatasetError, match=r"found \['filepath\\ttitle'\] \(separator ','\)"):
        datasets.load_csv(folder / "tabs.csv", sep=",")


def test_labelled_rows_prefer_rows_the_autoencoder_did_not_learn_from(csv_dir):
    folder, pairs = csv_dir
    rows = ["filepath,title,label"] + [f"img/{i}.png,{c},{'ab'[i % 2]}" for i, c in enumerate(pairs.captions)]
    csv = write(folder / "labelled.csv", rows)
    s = experiment.ExperimentConfig(dataset_csv=str(csv), n_feature_pairs=4, n_test=10, label_column="label")
    learned = datasets.load_csv(csv, limit=4).paths
    got, held = experiment.labelled_rows(s, 3, learned)
    assert held and [p.name for p in got.paths] == ["4.png", "5.png"] and got.columns["label"] == ["a", "b"]
    got, held = experiment.labelled_rows(s, 3, datasets.load_csv(csv).paths)
    assert not held and [p.name for p in got.paths] == ["0.png", "1.png", "2.png"]
    with pytest.raises(datasets.DatasetError, match="Set label_column"):
        experiment.labelled_rows(dataclasses.replace(s, label_column="group"), 3, learned)
