"""A dataset (see `ecgreport.dataset.format`; PTB-XL is one) in memory: signals, report text, splits.

Report text policy (documented in the README): a record's text is its report from the
dataset's reports CSV (for PTB-XL, the English translation in `reports_en.csv`, 16,272 of
21,837 records), normalised by `ecgreport.reports.normalise_report`. Records without one are
left out of training: for PTB-XL, their original German/Swedish text would teach the decoder
another language and embed poorly in an English text model, and text built from `scp_codes`
would put the diagnostic labels into training. Labels are read only by evaluation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgreport.dataset.format import Dataset, natural_key, open_dataset, parse_splits, record_paths
from ecgreport.errors import DataError
from ecgreport.reports import normalise_report

log = logging.getLogger(__name__)


@dataclass
class ECGTextSet:
    """N records of one split. signals: (N, 12, window) float32, model-normalised."""

    record_ids: np.ndarray    # (N,) str
    splits: np.ndarray        # (N,) str, the split column's value
    signals: np.ndarray
    reports: list[str]          # normalised report per record ("" when none, evaluation only)
    report_ids: np.ndarray      # (N,) index into `unique_reports`, equal for identical text
    unique_reports: list[str]

    def __len__(self) -> int:
        return len(self.record_ids)

    def subset(self, index: np.ndarray) -> "ECGTextSet":
        reports = [self.reports[i] for i in index]
        return _with_report_ids(self.record_ids[index], self.splits[index], self.signals[index], reports)


def _with_report_ids(record_ids, splits, signals, reports) -> ECGTextSet:
    unique = sorted(set(reports))
    lookup = {r: i for i, r in enumerate(unique)}
    ids = np.array([lookup[r] for r in reports], dtype=np.int64)
    return ECGTextSet(np.asarray(record_ids, dtype=object), np.asarray(splits, dtype=object), signals, reports, ids, unique)


def load_split(
    data_dir: Path | Dataset,
    splits,
    fs_hz: float = 100.0,
    window_samples: int = 1000,
    limit: int | None = None,
    progress=None,
    require_report: bool = True,
    role: str = "",
) -> ECGTextSet:
    """Load every record of `splits` (values of the split column, e.g. {'train'} or
    PTB-XL's folds {1, ..., 8}) that has a report, read once into memory, sorted by id.

    require_report=False (evaluation) keeps records without one, with report "".
    The file read is the one at `fs_hz` when the dataset has one per rate (PTB-XL:
    filename_lr 100 Hz, filename_hr 500 Hz), else a higher rate, resampled to `fs_hz`.
    `role` ('train', 'validation', ...) only words the error when the split is empty.
    """
    from ecgreport.records.read import read_record
    from ecgreport.signal.preprocess import model_window

    ds = data_dir if isinstance(data_dir, Dataset) else open_dataset(Path(data_dir))
    wanted = parse_splits(splits if not isinstance(splits, set) else sorted(splits, key=lambda s: natural_key(str(s))))
    if require_report and not ds.reports:
        raise DataError(f"{ds.root}: no reports (reports.csv with record_id,report)")
    rows = ds.select(wanted, require_report)
    if not rows:
        raise DataError(_empty_split_message(ds, wanted, role, require_report))
    if limit:
        rows = rows[:limit]
    signals = np.zeros((len(rows), 12, window_samples), np.float32)
    reports, splits_out, ids, failures = [], [], [], []
    task = progress.add_task(f"reading {role or ds.split_column} {', '.join(wanted)}", total=len(rows), info="") if progress else None
    for row in rows:
        rec, reason = None, "no file"
        for path in record_paths(ds, row, fs_hz):
            if not path.is_file():
                reason = f"{path}: no such file"
                continue
            try:
                rec = read_record(path)
                break
            except Exception as err:  # one unreadable file must not stop a 17k-record load
                reason = str(err)
        if progress:
            progress.advance(task)
        if rec is None:
            log.warning("skipping record %s: %s", row.record_id, reason)
            failures.append(reason)
            continue
        signals[len(ids)] = model_window(rec.signal_mv, rec.fs_hz, fs_hz, window_samples)
        reports.append(normalise_report(ds.reports.get(row.record_id, "")))
        splits_out.append(row.split)
        ids.append(row.record_id)
    if progress:
        progress.remove_task(task)
    if not ids:
        raise DataError(f"{ds.database}: none of the {len(rows)} records of {ds.split_column} "
                        f"{', '.join(wanted)} could be read, e.g. {failures[0]}")
    return _with_report_ids(np.array(ids, dtype=object), np.array(splits_out, dtype=object),
                            signals[: len(ids)], reports)


def _empty_split_message(ds: Dataset, wanted, role: str, require_report: bool) -> str:
    counts = ds.split_counts()
    with_report = {}
    for r in ds.rows:
        if r.record_id in ds.reports:
            with_report[r.split] = with_report.get(r.split, 0) + 1
    present = ", ".join(f"{k} ({v} records, {with_report.get(k, 0)} with a report)" for k, v in counts.items())
    option = {"train": " (--train-split)", "validation": " (--val-split)", "test": " (--split)"}.get(role, "")
    what = "records with a report" if require_report else "records"
    return (f"{ds.database}: no {what} in the {role + ' ' if role else ''}split {', '.join(wanted)}{option} "
            f"of column {ds.split_column!r}. Values present: {present or 'none'}. Choose other values, or "
            f"give the dataset a validation split: ecgreport dataset build RECORDS --out DS --split 80/10/10")
