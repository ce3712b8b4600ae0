"""`ecgreport dataset build`: a folder of WFDB records -> a dataset folder (see `format`).

Records are found as `ecgreport batch` finds them (`ecgreport.records.find_records`); a
record's id is its header's path relative to the folder, without `.hea` (`data/1`).

Where a report comes from:
- `--reports CSV` with columns record_id,report (an optional patient_id column): the
  record_id is matched to the record id, or to the header's file name alone when unique.
- otherwise the header's comment lines (`# ...`). A comment `<name>: value` (WFDB's field
  form, e.g. `#<age>: 51`) is a field, never report text. The report is every other
  comment line, in order, joined with spaces. With `--report-field NAME` it is the value
  of field NAME instead (`#<NAME>: value` or `#NAME: value`), followed by the plain lines
  that come after it up to the next field (LUDB's `#<diagnoses>:` then one line per finding).

The split is deterministic: patients (`patient_id` from the reports CSV or
`--patient-field`; else each record is its own patient) are sorted, shuffled with `--seed`
and cut by `--split` (e.g. 80/10/10 -> train/val/test), so one patient's records share a split.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgreport.dataset.format import natural_key, round_split
from ecgreport.errors import DataError
from ecgreport.pipeline import header_comments

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
_FIELD = re.compile(r"^<([^<>]+)>\s*:\s*(.*)$")
_PLAIN_FIELD = re.compile(r"^([A-Za-z_][\w ]*?)\s*:\s*(.*)$")


@dataclass
class BuildResult:
    out: Path
    n_records: int
    n_with_report: int
    split_counts: dict
    skipped: list[str] = field(default_factory=list)   # "record: reason"


def report_from_comments(comments: list[str], report_field: str | None = None) -> str:
    """The report text in a header's comments (rule in the module docstring).

    >>> c = ["<age>: 51", "<diagnoses>:", "Rhythm: Sinus bradycardia.", "Left ventricular hypertrophy."]
    >>> report_from_comments(c)
    'Rhythm: Sinus bradycardia. Left ventricular hypertrophy.'
    >>> report_from_comments(["Age: 60", "Dx: sinus rhythm"], "Dx")
    'sinus rhythm'
    """
    if report_field is None:
        return " ".join(c for c in comments if c and not _FIELD.match(c))
    wanted = report_field.strip().lower()
    parts: list[str] = []
    inside = False
    for c in comments:
        m = _FIELD.match(c) or _PLAIN_FIELD.match(c)
        if _FIELD.match(c) or (m and not inside):
            inside = m.group(1).strip().lower() == wanted
            if inside and m.group(2).strip():
                parts.append(m.group(2).strip())
        elif inside and c:
            parts.append(c)
    return " ".join(parts)


def field_from_comments(comments: list[str], name: str) -> str | None:
    wanted = name.strip().lower()
    for c in comments:
        m = _FIELD.match(c) or _PLAIN_FIELD.match(c)
        if m and m.group(1).strip().lower() == wanted:
            return m.group(2).strip() or None
    return None


def _read_reports_csv(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in reader.fieldnames or []]
        if "record_id" not in cols or "report" not in cols:
            raise DataError(f"{path}: expected columns record_id,report[,patient_id]; found {', '.join(cols)}")
        reports, patients = {}, {}
        for r in reader:
            rid = (r["record_id"] or "").strip()
            if rid:
                reports[rid] = (r["report"] or "").strip()
                if (r.get("patient_id") or "").strip():
                    patients[rid] = r["patient_id"].strip()
    return reports, patients


def parse_split_fractions(text: str) -> list[float]:
    """'80/10/10' -> [80, 10, 10] (train/val/test; any positive scale)."""
    try:
        parts = [float(p) for p in text.replace(",", "/").split("/")]
    except ValueError:
        raise DataError(f"--split {text!r}: expected train/val/test shares, e.g. 80/10/10") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or parts[0] <= 0 or parts[1] <= 0:
        raise DataError(f"--split {text!r}: expected three shares train/val/test, train and val above 0 (e.g. 80/10/10)")
    return parts


def assign_splits(record_ids: list[str], patients: dict[str, str], fractions: list[float], seed: int) -> dict[str, str]:
    """record id -> 'train' | 'val' | 'test', cut by patient (see the module docstring)."""
    groups: dict[str, list[str]] = {}
    for rid in record_ids:
        groups.setdefault(patients.get(rid) or f"record:{rid}", []).append(rid)
    keys = sorted(groups, key=natural_key)
    order = np.random.default_rng(seed).permutation(len(keys))
    counts = round_split(len(keys), fractions)
    split: dict[str, str] = {}
    start = 0
    for name, n in zip(SPLIT_NAMES, counts):
        for i in order[start:start + n]:
            for rid in groups[keys[i]]:
                split[rid] = name
        start += n
    return split


def build_dataset(
    folder: Path,
    out: Path,
    reports_csv: Path | None = None,
    report_field: str | None = None,
    patient_field: str | None = None,
    split: str = "80/10/10",
    seed: int = 0,
    name: str | None = None,
    citation: str = "",
    force: bool = False,
) -> BuildResult:
    """Write out/database.csv, out/reports.csv and out/dataset.json for the records under `folder`."""
    from ecgreport.records import find_records, read_header

    folder = Path(folder).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    fractions = parse_split_fractions(split)
    if (out / "database.csv").exists() and not force:
        raise DataError(f"{out}: already holds a dataset (database.csv); give --force to replace it")
    try:
        refs = find_records(folder)
    except FileNotFoundError as err:
        raise DataError(str(err)) from None
    if not refs:
        raise DataError(f"{folder}: no WFDB records (.hea headers) found")
    given, given_patients = _read_reports_csv(reports_csv) if reports_csv else ({}, {})
    by_name: dict[str, list[str]] = {}
    for ref in refs:
        by_name.setdefault(Path(ref.record_id).name, []).append(ref.record_id)

    rows, reports, patients, skipped, used = [], {}, {}, [], set()
    for ref in refs:
        try:
            header = read_header(ref)
        except Exception as err:  # noqa: BLE001 - one bad header must not stop the build
            skipped.append(f"{ref.record_id}: {err}")
            continue
        comments = header_comments(ref.header_path)  # ecgreport.pipeline's, as batch reads them
        if reports_csv:
            key = ref.record_id
            if key not in given and len(by_name[Path(key).name]) == 1:
                key = Path(key).name
            text = given.get(key, "")
            used.add(key)
            if key in given_patients:
                patients[ref.record_id] = given_patients[key]
        else:
            text = report_from_comments(comments, report_field)
        if patient_field:
            value = field_from_comments(comments, patient_field)
            if value:
                patients[ref.record_id] = value
        if text:
            reports[ref.record_id] = text
        rows.append((ref.record_id, str(ref.header_path), header.fs_hz))
    if not rows:
        raise DataError(f"{folder}: none of the {len(refs)} headers could be read, e.g. {skipped[0]}")
    unmatched = sorted(set(given) - used)
    if reports_csv and unmatched:
        log.warning("%s: %d report(s) match no record, e.g. %r", reports_csv, len(unmatched), unmatched[0])

    splits = assign_splits([r[0] for r in rows], patients, fractions, seed)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "database.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["record_id", "patient_id", "filename", "fs_hz", "split"])
        for rid, path, fs in rows:
            w.writerow([rid, patients.get(rid, ""), path, f"{fs:g}", splits[rid]])
    with (out / "reports.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["record_id", "report"])
        for rid, _, _ in rows:
            if rid in reports:
                w.writerow([rid, reports[rid]])
    counts = {s: sum(1 for v in splits.values() if v == s) for s in SPLIT_NAMES}
    meta = {"name": name or folder.name, "citation": citation, "source": str(folder),
            "reports": str(Path(reports_csv).resolve()) if reports_csv else
            (f"header field {report_field!r}" if report_field else "header comment lines that are not <field>: value"),
            "split": {"shares": split, "seed": seed, "by": "patient" if patients else "record", "counts": counts},
            "built_by": "ecgreport dataset build"}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return BuildResult(out, len(rows), len(reports), counts, skipped)


def truth_from_reports(ds_root: Path, set_name: str, labels, out: Path | None = None) -> Path:
    """DS/truth/SET.csv from the dataset's own reports: a record is positive for a label
    when its report contains the label's description or one of its prompts (case-insensitive,
    whole words). A quick truth table for data whose reports are its diagnoses (LUDB)."""
    from ecgreport.dataset.format import open_dataset

    ds = open_dataset(ds_root)
    out = Path(out) if out else ds.root / "truth" / f"{set_name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    patterns = [[re.compile(r"\b" + re.escape(p.lower()) + r"\b") for p in (label.prompts or [label.description])]
                for label in labels]
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["record_id", *(label.name for label in labels)])
        for row in ds.rows:
            text = ds.reports.get(row.record_id, "").lower()
            if text:
                w.writerow([row.record_id, *(int(any(p.search(text) for p in ps)) for ps in patterns)])
    return out
