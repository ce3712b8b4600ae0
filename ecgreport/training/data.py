"""PTB-XL in memory: signals, English report text, folds.

Report text policy (documented in the README): a record's text is its English translation
from `reports_en.csv` (16,272 of 21,837 records), normalised by
`ecgreport.reports.normalise_report`. Records without one are left out of training: their
original German/Swedish text would teach the decoder another language and embed poorly in
an English text model, and text built from `scp_codes` would put the diagnostic labels into
training. `scp_codes` are read only by evaluation.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgreport.errors import DataError
from ecgreport.reports import normalise_report

log = logging.getLogger(__name__)


@dataclass
class ECGTextSet:
    """N records of one split. signals: (N, 12, window) float32, model-normalised."""

    ecg_ids: np.ndarray
    folds: np.ndarray
    signals: np.ndarray
    reports: list[str]          # normalised English report per record
    report_ids: np.ndarray      # (N,) index into `unique_reports`, equal for identical text
    unique_reports: list[str]

    def __len__(self) -> int:
        return len(self.ecg_ids)

    def subset(self, index: np.ndarray) -> "ECGTextSet":
        reports = [self.reports[i] for i in index]
        return _with_report_ids(self.ecg_ids[index], self.folds[index], self.signals[index], reports)


def _with_report_ids(ecg_ids, folds, signals, reports) -> ECGTextSet:
    unique = sorted(set(reports))
    lookup = {r: i for i, r in enumerate(unique)}
    ids = np.array([lookup[r] for r in reports], dtype=np.int64)
    return ECGTextSet(np.asarray(ecg_ids), np.asarray(folds), signals, reports, ids, unique)


def read_database(data_dir: Path) -> list[dict]:
    """Rows of ptbxl_database.csv, with a clear error when the folder is not PTB-XL-like."""
    data_dir = Path(data_dir)
    db = data_dir / "ptbxl_database.csv"
    if not db.is_file():
        raise DataError(f"{data_dir}: no ptbxl_database.csv (expected PTB-XL's PhysioNet layout)")
    with db.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_english_reports(data_dir: Path) -> dict[int, str]:
    path = Path(data_dir) / "reports_en.csv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {int(r["ecg_id"]): r["report"] for r in csv.DictReader(f)}


def load_split(
    data_dir: Path,
    folds: set[int],
    fs_hz: float = 100.0,
    window_samples: int = 1000,
    limit: int | None = None,
    progress=None,
    require_report: bool = True,
) -> ECGTextSet:
    """Load every record of `folds` that has an English report, read once into memory.

    require_report=False (evaluation) keeps records without one, with report "".

    fs_hz picks `filename_lr` (100 Hz) or `filename_hr` (500 Hz); other rates are resampled
    from the 500 Hz files when present, else from the 100 Hz files.
    """
    from ecgreport.records.read import read_record
    from ecgreport.signal.preprocess import model_window

    data_dir = Path(data_dir)
    english = read_english_reports(data_dir)
    if not english and require_report:
        raise DataError(f"{data_dir}: no reports_en.csv with English report text")
    rows = [r for r in read_database(data_dir)
            if int(r["strat_fold"]) in folds and (int(r["ecg_id"]) in english or not require_report)]
    rows.sort(key=lambda r: int(r["ecg_id"]))
    if limit:
        rows = rows[:limit]
    column = "filename_lr" if fs_hz <= 100 else "filename_hr"
    signals = np.zeros((len(rows), 12, window_samples), np.float32)
    kept, reports, folds_out, ids = [], [], [], []
    task = progress.add_task(f"reading folds {sorted(folds)}", total=len(rows), info="") if progress else None
    for i, row in enumerate(rows):
        path = data_dir / (row[column] + ".hea")
        if not path.exists() and column == "filename_hr":
            path = data_dir / (row["filename_lr"] + ".hea")
        try:
            rec = read_record(path)
        except Exception as err:  # one unreadable file must not stop a 17k-record load
            log.warning("skipping %s: %s", path, err)
            continue
        signals[len(kept)] = model_window(rec.signal_mv, rec.fs_hz, fs_hz, window_samples)
        kept.append(i)
        reports.append(normalise_report(english.get(int(row["ecg_id"]), "")))
        folds_out.append(int(row["strat_fold"]))
        ids.append(int(row["ecg_id"]))
        if progress:
            progress.advance(task)
    if progress:
        progress.remove_task(task)
    if not kept:
        raise DataError(f"{data_dir}: no readable records with English reports in folds {sorted(folds)}")
    return _with_report_ids(np.array(ids), np.array(folds_out), signals[: len(kept)], reports)
