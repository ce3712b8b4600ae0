"""The dataset format that `ecgreport train`, `export-onnx` and `evaluate` read.

A dataset is a folder DS holding CSV files (UTF-8, comma-separated, a header row):

  DS/database.csv   one row per record (PTB-XL's own file, ptbxl_database.csv, is read too):
      record_id        the record's id; any text (PTB-XL: `ecg_id`). Unique.
      filename         the WFDB record, with or without `.hea`, relative to DS or absolute;
                       the sampling rate is read from its header.
        or filename_lr / filename_hr   PTB-XL's pair of files per record at 100 and 500 Hz.
      split            the record's split: any values, e.g. train / val / test
                       (PTB-XL: `strat_fold`, 1-10).
      patient_id       optional (used by `ecgreport dataset build` to keep a patient in one split).
  DS/reports.csv    record_id,report: the free-text report of each record (PTB-XL:
                    reports_en.csv with ecg_id,report). Records without one are not trained on.
  DS/dataset.json   optional: {"name": ..., "citation": ...}, shown in the model card and
                    in every batch report ("nearest <name> training ECGs").
  DS/labels/NAME.csv  optional label sets for `export-onnx` (label,description[,more prompts]).
  DS/truth/NAME.csv   optional truth tables for `evaluate`: record_id and one 0/1 column per
                      label of set NAME.
  DS/scp_statements.csv  PTB-XL only: its label sets and SCP statements.

Splits: with a `split` column, training uses `train` and chooses the checkpoint on `val`;
evaluate measures `test`. With PTB-XL's `strat_fold`: folds 1-8, 9 and 10.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ecgreport.errors import DataError

DATABASE_FILES = ("database.csv", "ptbxl_database.csv")
REPORTS_FILES = ("reports.csv", "reports_en.csv")
ID_COLUMNS = ("record_id", "ecg_id")
SPLIT_COLUMNS = ("split", "strat_fold")
# File column -> the sampling rate of the files it names (None: read from each header).
FILE_COLUMNS = {"filename": None, "filename_lr": 100.0, "filename_hr": 500.0}
PTBXL_CITATION = "Wagner et al., Scientific Data 7, 154, 2020; CC BY 4.0"
# Roles of the splits: train on, choose the checkpoint on, measure on.
DEFAULT_SPLITS = {"split": {"train": "train", "val": "val", "test": "test"},
                  "strat_fold": {"train": "1-8", "val": "9", "test": "10"}}


@dataclass(frozen=True)
class DatasetRow:
    record_id: str
    files: dict            # {fs_hz or None: path text as written}, in column order
    split: str
    patient_id: str | None = None


@dataclass
class Dataset:
    """A dataset folder, read and checked. `rows` keeps the database's order."""

    root: Path
    database: Path
    reports_path: Path | None
    id_column: str
    file_columns: list[str]
    split_column: str
    rows: list[DatasetRow]
    reports: dict[str, str]
    name: str
    citation: str = ""
    is_ptbxl: bool = False
    info: dict = field(default_factory=dict)

    def resolve(self, path_text: str) -> Path:
        """The `.hea` path of a file column's entry (relative to the dataset folder or absolute)."""
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            path = self.root / path
        return path if path.suffix == ".hea" else path.with_name(path.name + ".hea")

    def split_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.split] = counts.get(row.split, 0) + 1
        roles = {"train": 0, "val": 1, "test": 2}
        return dict(sorted(counts.items(), key=lambda kv: (roles.get(kv[0], 3), natural_key(kv[0]))))

    def default_split(self, role: str) -> tuple[str, ...]:
        """The split values for role 'train', 'val' or 'test' when none are given."""
        return parse_splits(DEFAULT_SPLITS[self.split_column][role])

    def select(self, splits, require_report: bool = True) -> list[DatasetRow]:
        """Rows whose split is in `splits` (and with a report, if required), sorted by id."""
        wanted = {str(s) for s in splits}
        rows = [r for r in self.rows if r.split in wanted and (self.reports.get(r.record_id) or not require_report)]
        return sorted(rows, key=lambda r: natural_key(r.record_id))

    def describe(self) -> str:
        """How the training data is named in model cards and reports."""
        return f"{self.name} ({self.citation})" if self.citation else self.name


def natural_key(text: str):
    """Sort numeric ids as numbers (PTB-XL's order), then the rest as text."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def parse_splits(text) -> tuple[str, ...]:
    """'1-8' -> ('1', ..., '8'); 'train' -> ('train',); 'a,b' -> ('a', 'b'); ints accepted.

    >>> parse_splits("1-3,10")
    ('1', '2', '3', '10')
    """
    if isinstance(text, (list, tuple, set)):
        text = ",".join(str(t) for t in text)
    out: list[str] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            out.extend(str(i) for i in range(int(m.group(1)), int(m.group(2)) + 1))
        elif part:
            out.append(part)
    if not out:
        raise DataError(f"no split values in {text!r}")
    return tuple(out)


def _first(root: Path, names) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return [c.strip() for c in (reader.fieldnames or [])], rows
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: not a UTF-8 CSV file ({err})") from None


def _split_value(text: str) -> str:
    text = (text or "").strip()
    # PTB-XL-like folds written by pandas as floats ("3.0") are the fold 3.
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return text


def open_dataset(root: Path) -> Dataset:
    """Read DS/database.csv and DS/reports.csv; DataError naming the file and the problem."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    database = _first(root, DATABASE_FILES)
    if database is None:
        raise DataError(f"{root}: no database.csv (a dataset folder holds database.csv and reports.csv; "
                        "make one with: ecgreport dataset build RECORDS_FOLDER --out DS)")
    columns, raw = _read_csv(database)
    id_column = next((c for c in ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise DataError(f"{database}: no id column (record_id, or PTB-XL's ecg_id); columns: {', '.join(columns)}")
    file_columns = [c for c in FILE_COLUMNS if c in columns]
    if not file_columns:
        raise DataError(f"{database}: no file column: 'filename' (any rate, read from the header) "
                        f"or PTB-XL's 'filename_lr'/'filename_hr'; columns: {', '.join(columns)}")
    split_column = next((c for c in SPLIT_COLUMNS if c in columns), None)
    if split_column is None:
        raise DataError(f"{database}: no split column ('split', e.g. train/val/test, or PTB-XL's "
                        "'strat_fold'); add one, or rebuild with: ecgreport dataset build ... --split 80/10/10")
    rows, seen = [], set()
    for line, r in enumerate(raw, start=2):
        rid = (r.get(id_column) or "").strip()
        if not rid:
            raise DataError(f"{database}, line {line}: empty {id_column}")
        if rid in seen:
            raise DataError(f"{database}, line {line}: {id_column} {rid!r} appears twice")
        seen.add(rid)
        files = {FILE_COLUMNS[c]: r[c].strip() for c in file_columns if (r.get(c) or "").strip()}
        if not files:
            raise DataError(f"{database}, line {line}: record {rid!r} has no file name in {', '.join(file_columns)}")
        split = _split_value(r.get(split_column, ""))
        if not split:
            raise DataError(f"{database}, line {line}: record {rid!r} has no {split_column}")
        patient = (r.get("patient_id") or "").strip() or None
        rows.append(DatasetRow(rid, files, split, patient))

    reports_path = _first(root, REPORTS_FILES)
    reports: dict[str, str] = {}
    if reports_path is not None:
        rcols, rraw = _read_csv(reports_path)
        rid_col = next((c for c in ID_COLUMNS if c in rcols), None)
        if rid_col is None or "report" not in rcols:
            raise DataError(f"{reports_path}: expected columns record_id,report; found {', '.join(rcols)}")
        reports = {(r[rid_col] or "").strip(): (r["report"] or "").strip() for r in rraw}
        reports = {k: v for k, v in reports.items() if k and v}

    info = {}
    meta = root / "dataset.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{meta}: not valid JSON ({err})") from None
    is_ptbxl = database.name == "ptbxl_database.csv"
    name = info.get("name") or ("PTB-XL" if is_ptbxl else root.name)
    citation = info.get("citation") or (PTBXL_CITATION if is_ptbxl else "")
    return Dataset(root, database, reports_path, id_column, file_columns, split_column, rows, reports,
                   name, citation, is_ptbxl, info)


def record_paths(ds: Dataset, row: DatasetRow, fs_hz: float) -> list[Path]:
    """Candidate `.hea` files of a record, best first: the file at the model's rate, then
    higher rates (resampled down), then lower ones; 'filename' (any rate) last."""
    def rank(rate):
        if rate is None:
            return (1, 0.0)
        return (0, 0.0 if rate == fs_hz else (1.0 / rate if rate > fs_hz else 1.0 + 1.0 / rate))
    return [ds.resolve(text) for rate, text in sorted(row.files.items(), key=lambda kv: rank(kv[0]))]


def check_dataset(root: Path, sample_files: int = 0) -> tuple[list[str], list[str]]:
    """(facts, problems) about a dataset folder, for `ecgreport dataset check`.

    Every record file is checked for existence (a stat per record); `sample_files` > 0 also
    reads that many records' headers.
    """
    from ecgreport.records import read_header

    try:
        ds = open_dataset(root)
    except DataError as err:
        return [], [str(err)]
    facts = [f"dataset   {ds.describe()}",
             f"database  {ds.database.name}: {len(ds.rows)} records; id column {ds.id_column!r}, "
             f"file column(s) {', '.join(ds.file_columns)}, split column {ds.split_column!r}"]
    problems: list[str] = []
    counts = ds.split_counts()
    facts.append("splits    " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if ds.reports_path is None:
        problems.append(f"no reports.csv (record_id,report): nothing to train on")
    with_report = sum(1 for r in ds.rows if r.record_id in ds.reports)
    unknown = sorted(set(ds.reports) - {r.record_id for r in ds.rows}, key=natural_key)
    if ds.reports_path is not None:
        facts.append(f"reports   {ds.reports_path.name}: {with_report} of {len(ds.rows)} records have a report"
                     + (f"; {len(unknown)} report(s) for ids not in the database, e.g. {unknown[0]!r}" if unknown else ""))
    for role in ("train", "val", "test"):
        wanted = set(ds.default_split(role))
        n = sum(1 for r in ds.rows if r.split in wanted and r.record_id in ds.reports)
        if n == 0 and role != "test":
            problems.append(f"no records with a report in the default {role} split "
                            f"({ds.split_column} {', '.join(sorted(wanted, key=natural_key))}); "
                            f"splits present: {', '.join(counts)}; give `ecgreport train --{role}-split`")
    missing = [r for r in ds.rows if not any(p.is_file() for p in record_paths(ds, r, 100.0))]
    if missing:
        first = ds.resolve(next(iter(missing[0].files.values())))
        problems.append(f"{len(missing)} record file(s) not found, e.g. {first}")
    else:
        facts.append(f"files     all {len(ds.rows)} record headers found")
    rates: dict[float, int] = {}
    for row in ds.rows[:sample_files] if sample_files else []:
        for p in record_paths(ds, row, 100.0)[:1]:
            try:
                rates[read_header(p).fs_hz] = rates.get(read_header(p).fs_hz, 0) + 1
            except Exception as err:  # noqa: BLE001 - reported, not raised
                problems.append(f"{p}: {err}")
    if rates:
        facts.append("rates     " + ", ".join(f"{k:g} Hz x{v}" for k, v in sorted(rates.items()))
                     + f" (first {sample_files} headers)")
    labels = sorted((ds.root / "labels").glob("*.csv")) if (ds.root / "labels").is_dir() else []
    truth = sorted((ds.root / "truth").glob("*.csv")) if (ds.root / "truth").is_dir() else []
    if (ds.root / "scp_statements.csv").is_file():
        facts.append("labels    PTB-XL scp_statements.csv (superclass, subclass, form, rhythm)")
    facts.append("labels    " + (", ".join(p.stem for p in labels) if labels else "none in labels/ (optional)"))
    facts.append("truth     " + (", ".join(p.stem for p in truth) if truth else "none in truth/ (optional)"))
    for p in truth:
        cols, _ = _read_csv(p)
        if not cols or cols[0] not in ID_COLUMNS:
            problems.append(f"{p}: first column must be record_id")
    return facts, problems


def round_split(n: int, parts: list[float]) -> list[int]:
    """Split n items into parts proportional to `parts` (largest remainder), giving every
    non-zero part at least one item while there are enough.

    >>> round_split(10, [80, 10, 10]), round_split(3, [98, 1, 1]), round_split(2, [80, 10, 10])
    ([8, 1, 1], [1, 1, 1], [1, 1, 0])
    """
    total = sum(parts)
    exact = [n * p / total for p in parts]
    counts = [math.floor(e) for e in exact]
    for i in sorted(range(len(parts)), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    for i, p in enumerate(parts):
        if p > 0 and counts[i] == 0:
            donor = max(range(len(parts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts
