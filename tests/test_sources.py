"""Datasets for `mdsgap embed`: brace patterns, separator detection, CSV and tar input shards, and every
bad input named with its fix."""
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mdsgap import world
from mdsgap.pipeline import sources
from mdsgap.clip.datasets import DatasetError


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def make_dataset(folder: Path, n: int = 36, n_tars: int = 3) -> world.Pairs:
    """n world pairs as PNG files with a CSV, a TSV (open_clip's format) and n_tars webdataset tars."""
    pairs = world.generate(world.WorldConfig(), n, seed=0)
    (folder / "img").mkdir(parents=True)
    for i, im in enumerate(pairs.images):
        Image.fromarray(im).save(folder / "img" / f"{i}.png")
    rows = [("filepath", "title")] + [(f"img/{i}.png", c) for i, c in enumerate(pairs.captions)]
    (folder / "pairs.csv").write_text("".join(f"{a},{b}\n" for a, b in rows))
    (folder / "pairs.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in rows))
    per = n // n_tars
    (folder / "shards").mkdir()
    for t in range(n_tars):
        with tarfile.open(folder / "shards" / f"{t:05d}.tar", "w") as tf:
            for i in range(t * per, (t + 1) * per):
                add(tf, f"{i:06d}.png", (folder / "img" / f"{i}.png").read_bytes())
                add(tf, f"{i:06d}.txt", pairs.captions[i].encode())
    return pairs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return folder, make_dataset(folder)


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, payload in files.items():
            add(tf, name, payload)
    return path


def png(data_dir: Path, i: int = 0) -> bytes:
    return (data_dir / "img" / f"{i}.png").read_bytes()


# brace patterns

def test_brace_ranges_keep_zero_padding_and_lists_expand_in_order():
    assert sources.expand_braces("data/{00000..00002}.tar") == [f"data/{i:05d}.tar" for i in range(3)]
    assert sources.expand_braces("{8..10}") == ["8", "9", "10"]
    assert sources.expand_braces("{08..10}") == ["08", "09", "10"]
    assert sources.expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]
    assert sources.expand_braces("{a,{b,c}}x") == ["ax", "bx", "cx"]
    assert sources.expand_braces("plain.tar") == ["plain.tar"]
    assert sources.expand_braces("{x}.tar") == ["{x}.tar"]
    with pytest.raises(DatasetError, match="unbalanced braces"):
        sources.expand_braces("data/{000..009.tar")


def test_pattern_parts_join_and_missing_files_are_named(data):
    folder, _ = data
    got = sources.expand_pattern(f"{folder}/shards/{{00000..00001}}.tar::{folder}/shards/00002.tar")
    assert [p.name for p in got] == ["00000.tar", "00001.tar", "00002.tar"]
    with pytest.raises(DatasetError, match=r"matches no file \(folder .* holds 3 tar files, 00000.tar to 00002.tar\)"):
        sources.expand_pattern(f"{folder}/shards/{{10000..10002}}.tar")
    with pytest.raises(DatasetError, match=r"folder .*nowhere does not exist"):
        sources.expand_pattern(f"{folder}/nowhere/{{0..2}}.tar")
    with pytest.raises(DatasetError, match=r"2 of the 5 files .* do not exist \(first: .*00003.tar\): download them"):
        sources.expand_pattern(f"{folder}/shards/{{00000..00004}}.tar")


# CSV and TSV

def test_separator_is_detected_from_suffix_or_header(data, tmp_path):
    folder, pairs = data
    for name in ("pairs.csv", "pairs.tsv"):
        src = sources.open_source(folder / name, shard_size=10)
        assert src.info["sep"] == ("\t" if name.endswith(".tsv") else ",")
        assert [c for s in src.shards for _, _, c in s] == pairs.captions
    tabbed = tmp_path / "tabs.csv"  # open_clip's default: tab-separated under a .csv name
    tabbed.write_text((folder / "pairs.tsv").read_text().replace("img/", f"{folder}/img/"))
    assert sources.open_source(tabbed).info["sep"] == "\t"


def test_csv_is_cut_into_shards_of_rows(data):
    folder, pairs = data
    src = sources.open_source(folder / "pairs.csv", shard_size=10)
    assert [s.rows for s in src.shards] == [10, 10, 10, 6]
    assert src.shards[1].source.endswith("pairs.csv rows 12-21")
    key, image, caption = next(iter(src.shards[1]))
    assert key == "12:img/10.png" and caption == pairs.captions[10]
    assert np.array_equal(np.asarray(image), pairs.images[10])


def test_quoted_newlines_do_not_shift_shards(data, tmp_path):
    folder, pairs = data
    rows = ["filepath,title"] + [f'{folder}/img/{i}.png,"line one\nline {i}"' for i in range(7)]
    p = tmp_path / "multi.csv"
    p.write_text("\n".join(rows) + "\n")
    src = sources.open_source(p, shard_size=3)
    assert [s.rows for s in src.shards] == [3, 3, 1]
    assert [c for _, _, c in src.shards[2]] == ["line one\nline 6"]


def test_missing_columns_name_the_columns_and_the_options(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("path,caption\na.png,hi\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['filepath', 'title'\]; found \['path', 'caption'\] "
                                           r"\(separator ','\)\. Pass --img-key/--caption-key .* --sep '\\t'"):
        sources.open_source(p)
    with pytest.raises(DatasetError, match="not found: pass a CSV/TSV"):
        sources.open_source(tmp_path / "nope.csv")


def test_bad_csv_rows_are_named_or_skipped(data, tmp_path):
    folder, _ = data
    p = tmp_path / "bad.csv"
    p.write_text(f"filepath,title\n{folder}/img/0.png,a circle\nmissing.png,a square\n{folder}/img/1.png,\n")
    shard = sources.open_source(p).shards[0]
    with pytest.raises(DatasetError, match=r"bad.csv, row 3 \(missing.png\): image file not found: .* --skip-bad"):
        list(shard)
    shard = sources.open_source(p, skip_bad=True).shards[0]
    assert [k for k, _, _ in shard] == [f"2:{folder}/img/0.png"]
    assert [w.split(", ")[-1] for w, _ in shard.skipped] == ["row 3 (missing.png)", f"row 4 ({folder}/img/1.png)"]
    assert shard.skipped[1][1] == "empty 'title'"


# webdataset tars

def test_tar_shards_yield_their_samples(data):
    folder, pairs = data
    src = sources.open_source(f"{folder}/shards/{{00000..00002}}.tar")
    assert src.kind == "webdataset" and len(src.shards) == 3
    got = [(k, np.asarray(im), c) for s in src.shards for k, im, c in s]
    assert [k for k, _, _ in got] == [f"{i:06d}" for i in range(36)]
    assert [c for _, _, c in got] == pairs.captions
    assert all(np.array_equal(im, want) for (_, im, _), want in zip(got, pairs.images))


def test_json_captions_and_compressed_tars(data, tmp_path):
    folder, _ = data
    files = {"a.jpg": png(folder, 0), "a.json": json.dumps({"caption": "from json"}).encode(),
             "b.png": png(folder, 1), "b.txt": b"from txt", "b.json": b"{}"}
    write_tar(tmp_path / "s.tar", files)
    with tarfile.open(tmp_path / "s.tar.gz", "w:gz") as tf:
        for name, payload in files.items():
            add(tf, name, payload)
    for name in ("s.tar", "s.tar.gz"):
        shard = sources.open_source(tmp_path / name).shards[0]
        assert [(k, c) for k, _, c in shard] == [("a", "from json"), ("b", "from txt")]


def test_malformed_tars_are_named_with_the_fix(data, tmp_path):
    folder, _ = data
    (tmp_path / "garbage.tar").write_bytes(b"this is not a tar file" * 100)
    whole = (folder / "shards" / "00000.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(whole[: len(whole) // 2])
    for name in ("garbage.tar", "cut.tar"):
        shard = sources.open_source(tmp_path / name).shards[0]
        with pytest.raises(DatasetError, match=rf"shard .*{name} is not a readable tar file \(truncated download\?\): "
                                               "re-download it or leave it out of the pattern"):
            list(shard)


def test_sample_without_caption_is_named_or_skipped(data, tmp_path):
    folder, _ = data
    path = write_tar(tmp_path / "s.tar", {"a.png": png(folder), "a.txt": b"ok", "b.png": png(folder)})
    with pytest.raises(DatasetError, match=r"shard .*s.tar, sample b: has an image but no caption \(b.txt, or b.json"):
        list(sources.open_source(path).shards[0])
    shard = sources.open_source(path, skip_bad=True).shards[0]
    assert [k for k, _, _ in shard] == ["a"] and len(shard.skipped) == 1


def test_unreadable_image_names_key_and_shard_or_is_skipped(data, tmp_path):
    folder, _ = data
    path = write_tar(tmp_path / "s.tar", {"a.png": png(folder), "a.txt": b"ok", "b.jpg": b"\xff\xd8broken",
                                          "b.txt": b"broken"})
    with pytest.raises(DatasetError, match=r"shard .*s.tar, sample b: image cannot be read \(.*\)\. To go on, "
                                           r"re-download the shard, or pass --skip-bad"):
        list(sources.open_source(path).shards[0])
    src = sources.open_source(path, skip_bad=True)
    assert [k for k, _, _ in src.shards[0]] == ["a"] and src.skipped == 1
