"""Datasets for `mdsgap embed`: a CSV/TSV of image paths and captions, or webdataset tar shards, as an ordered
list of input shards, each yielding (key, PIL image, caption).

The conventions are open_clip's: CSV columns `filepath` and `title` (paths relative to the file's folder),
tab-separated when the file is a `.tsv` or its header says so; tars holding `<key>.jpg|png|jpeg|webp` with
`<key>.txt` (or `<key>.json` with a "caption"), named by brace patterns such as `data/{00000..00099}.tar`.
A CSV is cut into shards of `shard_size` rows and a tar is one shard, so work splits across ranks and resumes
shard by shard. Problems name the file, the row or sample, and the fix; with `skip_bad` bad samples are left
out and counted (`InputShard.skipped`).
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from PIL import Image, UnidentifiedImageError

from mdsgap.clip.datasets import DatasetError, detect_sep

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTS = ("txt", "json")
SKIP_HINT = "or pass --skip-bad to leave such samples out and count them"


def expand_braces(pattern: str) -> list[str]:
    """Bash-style brace expansion: `{00000..00099}` ranges (zero padding kept) and `{a,b}` lists, nested and
    repeated, in order; a brace with neither stays as it is."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth = 0
    for end in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[end], 0)
        if depth == 0:
            break
    else:
        raise DatasetError(f"unbalanced braces in {pattern!r}: close every '{{' with a '}}'.")
    head, inner, tail = pattern[:start], pattern[start + 1:end], pattern[end + 1:]
    rng = re.fullmatch(r"(\d+)\.\.(\d+)", inner)
    if rng:
        a, b = rng.groups()
        padded = (len(a) > 1 and a[0] == "0") or (len(b) > 1 and b[0] == "0")
        width = max(len(a), len(b)) if padded else 0
        step = 1 if int(b) >= int(a) else -1
        alternatives = [str(i).zfill(width) for i in range(int(a), int(b) + step, step)]
    else:
        alternatives = _split_top_level(inner)
        if len(alternatives) == 1:  # `{x}`: literal braces, as in bash
            return [head + "{" + inner + "}" + rest for rest in expand_braces(tail)]
    return [out for alt in alternatives for out in expand_braces(head + alt + tail)]


def _split_top_level(text: str) -> list[str]:
    parts, depth, last = [], 0, 0
    for i, c in enumerate(text):
        depth += {"{": 1, "}": -1}.get(c, 0)
        if c == "," and depth == 0:
            parts.append(text[last:i])
            last = i + 1
    return parts + [text[last:]]


def expand_pattern(data: str) -> list[Path]:
    """The files a webdataset pattern names: `::`-separated parts, each brace-expanded (and globbed where it
    holds `*`, `?` or `[`), in order without repeats. Files that do not exist are an error naming them."""
    names: list[str] = []
    for part in str(data).split("::"):
        for name in expand_braces(part):
            globbed = sorted(glob.glob(name)) if any(c in name for c in "*?[") else []
            names += globbed or [name]
    names = list(dict.fromkeys(names))
    missing = [n for n in names if not os.path.isfile(n)]
    if len(missing) == len(names):
        raise DatasetError(f"{data!r} matches no file{_folder_hint(names[0])}. Check the path and the pattern "
                           f"(brace ranges as in 'shards/{{00000..00099}}.tar').")
    if missing:
        raise DatasetError(f"{len(missing)} of the {len(names)} files {data!r} names do not exist (first: "
                           f"{missing[0]}): download them, or narrow the pattern to the shards you have.")
    return [Path(n) for n in names]


def _folder_hint(name: str) -> str:
    folder = Path(name).parent
    if not folder.is_dir():
        return f" (folder {folder} does not exist)"
    tars = sorted(p.name for p in folder.iterdir() if p.name.endswith((".tar", ".tar.gz", ".tgz")))
    if not tars:
        return f" (folder {folder} holds no .tar file)"
    return f" (folder {folder} holds {len(tars)} tar files, {tars[0]} to {tars[-1]})"


@dataclass(frozen=True)
class Sample:
    """One pair before decoding: where its image is (a file, or a byte range of a tar, or bytes of a
    compressed tar), its caption, and a problem already known (a malformed row, a missing caption)."""

    key: str
    caption: str
    where: str
    """How errors name it: 'shard X, sample K' or 'FILE, row N (PATH)'."""
    path: str
    offset: int = 0
    size: int = -1
    data: bytes | None = None
    problem: str | None = None
    fix: str = "fix the row or the image file"


def read_image(sample: Sample) -> tuple[Image.Image | None, str | None]:
    """(RGB image, None), or (None, what is wrong with it)."""
    try:
        if sample.data is not None:
            raw = sample.data
        else:
            with open(sample.path, "rb") as f:
                f.seek(sample.offset)
                raw = f.read() if sample.size < 0 else f.read(sample.size)
        with Image.open(io.BytesIO(raw)) as im:
            return im.convert("RGB"), None
    except FileNotFoundError:
        return None, f"image file not found: {sample.path}"
    except UnidentifiedImageError:
        return None, "image cannot be read (not a known image format)"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return None, f"image cannot be read ({type(e).__name__}: {e})"


@dataclass
class InputShard:
    """One unit of `embed` work: `rows` rows of a CSV from byte `offset`, or one tar file. Iterating yields
    (key, PIL image, caption); bad samples raise a DatasetError, or with `skip_bad` land in `skipped`."""

    index: int
    source: str
    """What the embedding shard records as its input: the tar's path, or 'CSV rows A-B'."""
    path: Path
    kind: str  # "csv" or "tar"
    skip_bad: bool = False
    offset: int = 0
    first_row: int = 0
    rows: int = 0
    sep: str = ","
    img_key: str = "filepath"
    caption_key: str = "title"
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(where, problem) of each sample left out."""

    def samples(self) -> list[Sample]:
        """Every sample of the shard in order, images not yet decoded (problems found so far attached)."""
        return self._csv_samples() if self.kind == "csv" else self._tar_samples()

    def reject(self, sample: Sample, problem: str) -> None:
        """A bad sample: an error naming it and the fix, or (with skip_bad) one more skipped sample."""
        if self.skip_bad:
            self.skipped.append((sample.where, problem))
            return
        fix = sample.fix if sample.problem else "re-download the shard" if self.kind == "tar" else sample.fix
        raise DatasetError(f"{sample.where}: {problem}. To go on, {fix}, {SKIP_HINT}.")

    def __iter__(self) -> Iterator[tuple[str, Image.Image, str]]:
        for s in self.samples():
            image, problem = (None, s.problem) if s.problem else read_image(s)
            if problem:
                self.reject(s, problem)
                continue
            yield s.key, image, s.caption

    def _csv_samples(self) -> list[Sample]:
        out, columns = [], _header(self.path, self.sep)
        for row_no, (_, fields) in enumerate(_records(self.path, self.sep, self.offset), start=self.first_row):
            if row_no >= self.first_row + self.rows:
                break
            out.append(self._row_sample(row_no, fields, columns))
        return out

    def _row_sample(self, row_no: int, fields: list[str], columns: list[str]) -> Sample:
        row = dict(zip(columns, fields))
        image, caption = (row.get(self.img_key) or "").strip(), (row.get(self.caption_key) or "").strip()
        path = Path(image) if Path(image).is_absolute() else self.path.parent / image
        where = f"{self.path}, row {row_no}" + (f" ({image})" if image else "")
        problem = None
        if len(fields) != len(columns):
            problem = f"has {len(fields)} fields, expected {len(columns)}"
        elif not image:
            problem = f"empty {self.img_key!r}"
        elif not caption:
            problem = f"empty {self.caption_key!r}"
        return Sample(f"{row_no}:{image}", caption, where, str(path), problem=problem)

    def _tar_samples(self) -> list[Sample]:
        unreadable = (f"shard {self.path} is not a readable tar file (truncated download?): re-download it or "
                      "leave it out of the pattern")
        try:
            members = _tar_members(self.path)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise DatasetError(f"{unreadable} ({type(e).__name__}: {e}).") from e
        if not members:
            raise DatasetError(f"{unreadable} (it holds no files).")
        groups: dict[str, dict[str, tuple]] = {}
        for name, ext, loc in members:
            groups.setdefault(name, {}).setdefault(ext, loc)
        out = []
        for key, files in groups.items():
            where = f"shard {self.path}, sample {key}"
            image_ext = next((e for e in IMAGE_EXTS if e in files), None)
            if image_ext is None:
                if any(e in files for e in CAPTION_EXTS):
                    out.append(Sample(key, "", where, str(self.path), fix="add its image to the shard",
                                      problem=f"has a caption but no image (.{'/.'.join(IMAGE_EXTS)})"))
                continue  # other metadata-only entries are not samples
            caption, problem = _tar_caption(self.path, key, files)
            offset, size, data = files[image_ext]
            out.append(Sample(key, caption, where, str(self.path), offset, size, data, problem,
                              f"give it a caption ({key}.txt) in the shard"))
        return out


def _tar_members(path: Path) -> list[tuple[str, str, tuple]]:
    """(key, extension, (offset, size, bytes or None)) of each file in a tar, webdataset-style: the key is
    the name up to the first dot of its base name. Uncompressed tars are read later by offset; compressed ones
    are read now."""
    out = []
    try:
        tf, compressed = tarfile.open(path, "r:"), False
    except tarfile.ReadError as plain:
        try:
            tf, compressed = tarfile.open(path, "r:*"), True
        except tarfile.ReadError:
            raise plain from None  # not compressed either: the plain reader's reason is the useful one
    with tf:
        size = path.stat().st_size
        for m in tf:
            if not m.isfile():
                continue
            match = re.match(r"^((?:.*/)?[^./]+)\.([^/]*)$", m.name)
            if not match:
                continue
            key, ext = match.group(1), match.group(2).lower()
            if compressed:
                out.append((key, ext, (0, m.size, tf.extractfile(m).read())))
            else:
                if m.offset_data + m.size > size:
                    raise tarfile.ReadError(f"{m.name} runs past the end of the file")
                out.append((key, ext, (m.offset_data, m.size, None)))
    return out


def _tar_caption(path: Path, key: str, files: dict) -> tuple[str, str | None]:
    """The caption of a tar sample from `<key>.txt` or `<key>.json`'s "caption", or ('', the problem)."""
    def read(ext):
        offset, size, data = files[ext]
        if data is not None:
            return data
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    try:
        if "txt" in files:
            caption = read("txt").decode("utf-8").strip()
        elif "json" in files:
            caption = str(json.loads(read("json")).get("caption") or "").strip()
        else:
            return "", f"has an image but no caption ({key}.txt, or {key}.json with a \"caption\" field)"
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        return "", f"has a caption file that cannot be read ({type(e).__name__}: {e})"
    return (caption, None) if caption else ("", "has an empty caption")


def _records(path: Path, sep: str, offset: int = 0) -> Iterator[tuple[int, list[str]]]:
    """(byte offset, fields) of each non-empty CSV record from byte `offset`, quoted newlines included."""
    with open(path, "rb") as f:
        f.seek(offset)
        pos = offset

        def lines():
            nonlocal pos
            for raw in f:
                first = pos == 0
                pos += len(raw)
                yield raw.decode("utf-8-sig" if first else "utf-8")

        start = offset
        for fields in csv.reader(lines(), delimiter=sep):
            if fields:
                yield start, fields
            start = pos


def _header(path: Path, sep: str) -> list[str]:
    return [c.strip() for c in next(_records(path, sep), (0, []))[1]]


@dataclass
class Source:
    """A dataset as input shards, and what identifies it (for the manifest and for resuming)."""

    kind: str  # "csv" or "webdataset"
    data: str
    shards: list[InputShard]
    info: dict

    def identity(self) -> dict:
        return {"kind": self.kind, "data": self.data, "inputs": len(self.shards), **self.info}

    @property
    def skipped(self) -> int:
        return sum(len(s.skipped) for s in self.shards)


def is_webdataset(data: str) -> bool:
    """A pattern or a tar rather than a CSV/TSV."""
    return any(c in data for c in "{*?[") or "::" in data or data.endswith((".tar", ".tar.gz", ".tgz"))


def open_source(data: str | Path, sep: str | None = None, img_key: str = "filepath", caption_key: str = "title",
                shard_size: int = 10_000, skip_bad: bool = False) -> Source:
    """The input shards of a CSV/TSV file or a webdataset pattern, checked as far as is cheap (files exist,
    columns present); samples are checked as they are read."""
    data = str(data)
    if is_webdataset(data):
        paths = expand_pattern(data)
        shards = [InputShard(i, str(p.resolve()), p.resolve(), "tar", skip_bad) for i, p in enumerate(paths)]
        return Source("webdataset", os.path.abspath(data), shards,
                      {"files": len(paths), "bytes": sum(p.stat().st_size for p in paths)})
    return _csv_source(Path(data), sep, img_key, caption_key, shard_size, skip_bad)


def _csv_source(path: Path, sep, img_key, caption_key, shard_size, skip_bad) -> Source:
    if not path.is_file():
        raise DatasetError(f"dataset {path} not found: pass a CSV/TSV with columns {img_key!r} and {caption_key!r}, "
                           f"or webdataset shards as a pattern like 'shards/{{00000..00099}}.tar'.")
    if shard_size < 1:
        raise DatasetError(f"shard_size must be at least 1, got {shard_size}.")
    path = path.resolve()
    with open(path, encoding="utf-8-sig", newline="") as f:
        first_line = f.readline()
    sep = sep or detect_sep(path, first_line)
    columns = _header(path, sep)
    missing = [c for c in (img_key, caption_key) if c not in columns]
    if missing:
        other = "','" if sep == "\t" else "'\\t'"
        raise DatasetError(f"{path}: missing column(s) {missing}; found {columns} (separator {sep!r}). Pass "
                           f"--img-key/--caption-key to name the image and caption columns, or --sep {other} if the "
                           f"separator is wrong.")
    starts, n = [], 0
    records = _records(path, sep)
    next(records)  # the header
    for n, (offset, _) in enumerate(records, start=1):
        if (n - 1) % shard_size == 0:
            starts.append(offset)
    if n == 0:
        raise DatasetError(f"{path} has a header but no rows: nothing to embed.")
    shards = []
    for i, offset in enumerate(starts):
        first = 2 + i * shard_size
        rows = min(shard_size, n - i * shard_size)
        shards.append(InputShard(i, f"{path} rows {first}-{first + rows - 1}", path, "csv", skip_bad, offset,
                                 first, rows, sep, img_key, caption_key))
    st = path.stat()
    return Source("csv", str(path), shards, {"rows": n, "sep": sep, "img_key": img_key, "caption_key": caption_key,
                                             "shard_size": shard_size, "size": st.st_size,
                                             "mtime_ns": st.st_mtime_ns})
