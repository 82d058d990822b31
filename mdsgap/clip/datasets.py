"""Real image-caption data: a CSV of image paths and captions (open_clip's `filepath`/`title` columns).

Every row is checked before any embedding is computed, so a bad row stops the run with its row
number instead of half-way through, or, with `skip_bad=True`, is left out and counted.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class DatasetError(ValueError):
    """A problem with a CSV dataset, naming the file, the row and the fix."""


@dataclass
class CsvPairs:
    """Image paths and captions from a CSV; `skipped` lists (row, reason) of rows left out."""

    paths: list[Path]
    captions: list[str]
    source: Path
    skipped: list[tuple[int, str]] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    """Extra columns asked for with `keep=` (a group label, for instance), one value per kept row."""

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, idx) -> "CsvPairs":
        idx = np.asarray(idx)
        return CsvPairs([self.paths[i] for i in idx], [self.captions[i] for i in idx], self.source, self.skipped,
                        {k: [v[i] for i in idx] for k, v in self.columns.items()})

    def load_images(self, idx) -> list[Image.Image]:
        return [Image.open(self.paths[i]).convert("RGB") for i in idx]

    def identity(self) -> dict:
        """What the embeddings of these pairs depend on: the CSV's path, size and modification time."""
        st = self.source.stat()
        return {"csv": str(self.source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "n": len(self)}


def _check_image(path: Path) -> str | None:
    if not path.is_file():
        return f"image file not found: {path}"
    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        return f"image cannot be read ({type(e).__name__}: {e}): {path}"
    return None


def detect_sep(csv_path: str | Path, header: str) -> str:
    """The column separator of a CSV: a tab for a `.tsv` file (open_clip's default) or a header line with more
    tabs than commas, else a comma."""
    if Path(csv_path).suffix.lower() == ".tsv" or header.count("\t") > header.count(","):
        return "\t"
    return ","


def load_csv(csv_path: str | Path, img_key: str = "filepath", caption_key: str = "title", sep: str | None = None,
             skip_bad: bool = False, limit: int | None = None, keep: tuple[str, ...] = (),
             hint: str = "") -> CsvPairs:
    """Read and check a CSV of image paths and captions; relative paths are taken from the CSV's folder.
    `keep` names extra columns to return (in `CsvPairs.columns`); a row with one of them empty is a bad row.
    `hint` says which parameter names a kept column, for the error when it is missing.
    `sep` None (or '') detects the separator, so open_clip's tab-separated files load as they are.

    Row numbers in errors count the header as row 1, as a spreadsheet shows them.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"Dataset CSV not found: {csv_path}. Pass the path of a CSV with columns "
                           f"{img_key!r} and {caption_key!r}.")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        sep = sep or detect_sep(csv_path, f.readline())
        f.seek(0)
        reader = csv.DictReader(f, delimiter=sep)
        columns = reader.fieldnames or []
        missing = [c for c in (img_key, caption_key, *keep) if c not in columns]
        if missing:
            fix = (f"{hint}, or rename the column" if hint and set(missing) & set(keep) else
                   "Rename the columns, or pass img_key=/caption_key=")
            raise DatasetError(f"{csv_path}: missing column(s) {missing}; found {columns} (separator {sep!r}). "
                               f"{fix[0].upper() + fix[1:]} (and sep= if the separator is wrong).")
        paths, captions, skipped, kept = [], [], [], {k: [] for k in keep}
        for row_no, row in enumerate(reader, start=2):
            if limit is not None and len(captions) >= limit:
                break
            extra = row.get(None)
            if extra or any(row[c] is None for c in columns):
                n_fields = sum(v is not None for k, v in row.items() if k is not None) + len(extra or [])
                problem = f"has {n_fields} fields, expected {len(columns)}"
            elif not (row[img_key] or "").strip():
                problem = f"empty {img_key!r}"
            elif not (row[caption_key] or "").strip():
                problem = f"empty {caption_key!r}"
            elif any(not (row[k] or "").strip() for k in keep):
                problem = f"empty {[k for k in keep if not (row[k] or '').strip()][0]!r}"
            else:
                path = Path(row[img_key].strip())
                path = path if path.is_absolute() else csv_path.parent / path
                problem = _check_image(path)
            if problem:
                if not skip_bad:
                    raise DatasetError(f"{csv_path}, row {row_no}: {problem}. Fix the row, or pass skip_bad=True "
                                       f"to leave out bad rows and count them.")
                skipped.append((row_no, problem))
                continue
            paths.append(path)
            captions.append(row[caption_key].strip())
            for k in keep:
                kept[k].append(row[k].strip())
    if not captions:
        raise DatasetError(f"{csv_path}: no usable rows ({len(skipped)} skipped).")
    return CsvPairs(paths, captions, csv_path, skipped, kept)
