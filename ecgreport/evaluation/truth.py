"""Truth tables for `ecgreport evaluate --truth`: any dataset's labels, for AUC and F1.

A truth table is a CSV: a `record_id` column (PTB-XL: `ecg_id`), then one column per label,
named as in one of the bundle's label sets, holding 0 or 1:

    record_id,SR,AFIB,LAD
    1,1,0,1

Labels mentioned in report text (for F1): a label counts as written in a report when the
report contains one of the label's prompts (its description when it has none), as whole
words in any case: the rule `ecgreport dataset truth` uses to make a table from reports.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ecgreport.errors import DataError
from ecgreport.evaluation.statements import statement_scores

ID_COLUMNS = ("record_id", "ecg_id")


def read_truth(path: Path, set_labels: list[str] | None, set_name: str) -> tuple[list[str], list[str], np.ndarray]:
    """(record ids, class names, (N, C) bool) of a truth table; DataError naming the line.

    set_labels: the names of the bundle's label set `set_name` (None: the bundle has no such set).
    """
    path = Path(path)
    if set_labels is None:
        raise DataError(f"--truth {set_name}={path}: the model has no label set {set_name!r} "
                        "(export it with: ecgreport export-onnx ... --labels NAME=FILE.csv)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the truth table ({err})") from None
    if not rows or not rows[0] or rows[0][0].strip() not in ID_COLUMNS:
        raise DataError(f"{path}: the first column must be record_id, then one 0/1 column per label")
    classes = [c.strip() for c in rows[0][1:]]
    unknown = [c for c in classes if c not in set_labels]
    if not classes or unknown:
        raise DataError(f"{path}: column(s) {', '.join(unknown) or '(none)'} are not labels of set {set_name!r} "
                        f"({', '.join(set_labels)})")
    ids, values = [], []
    for n, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        if len(row) != len(classes) + 1 or any(v.strip() not in ("0", "1") for v in row[1:]):
            raise DataError(f"{path}, line {n}: expected {len(classes)} values of 0 or 1 after the record id")
        ids.append(row[0].strip())
        values.append([v.strip() == "1" for v in row[1:]])
    if not ids:
        raise DataError(f"{path}: no records")
    return ids, classes, np.array(values, dtype=bool).reshape(len(ids), len(classes))


def mention_matrix(texts: list[str], prompts: list[list[str]]) -> np.ndarray:
    """(N, C) bool: does text i mention label c (one of its prompts, whole words, any case)?

    >>> mention_matrix(["sinus rhythm. left axis deviation."], [["left axis deviation"], ["sinus"], ["axis dev"]])
    array([[ True,  True, False]])
    """
    patterns = [[re.compile(r"\b" + re.escape(p.lower()) + r"\b") for p in ps] for ps in prompts]
    return np.array([[any(p.search(t.lower()) for p in ps) for ps in patterns] for t in texts],
                    dtype=bool).reshape(len(texts), len(prompts))


def mention_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Micro/macro precision, recall and F1 of (N, C) bool predictions (statement_scores)."""
    codes = [str(j) for j in range(y_true.shape[1])]
    as_sets = lambda y: [{codes[j] for j in np.flatnonzero(row)} for row in y]  # noqa: E731
    scores = statement_scores(as_sets(y_true), as_sets(y_pred), codes)
    scores.pop("per_code", None)
    return scores
