"""Pseudo-truth for choices made on PTB-XL fold 9 without its ``scp_codes``.

A record's pseudo-label for a label is whether the statement extractor
(`ecgreport.evaluation.statements.extract_statements`) reads a statement of that label in the
record's own English report, aggregated to the label sets with scp_statements.csv as the
benchmark aggregates ``scp_codes`` (`ecgreport.evaluation.labels.task_labels`). Every choice
made on fold 9 (decision thresholds: scripts/choose_thresholds.py; prompts, scoring and report
decoding: scripts/choose_scoring.py) is made against these, never against ``scp_codes``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgreport.evaluation.labels import task_labels
from ecgreport.evaluation.statements import extract_statements


def pseudo_labels(reports: Sequence[str], statements: list[dict], label_sets: dict[str, list[str]]) -> dict:
    """{set: (n_records, n_labels) bool}: the labels of the statements read in each report.

    reports: one report text per record (raw or normalised: the extractor reads both);
    statements: `load_scp_statements(...)`; label_sets: {set: [label, ...]} in column order.

    >>> from pathlib import Path
    >>> stm = [{"code": "AFIB", "description": "", "diagnostic": False, "form": False, "rhythm": True,
    ...         "diagnostic_class": None, "diagnostic_subclass": None, "category": ""}]
    >>> pseudo_labels(["atrial fibrillation.", "sinus rhythm."], stm, {"rhythm": ["AFIB"]})["rhythm"][:, 0].tolist()
    [True, False]
    """
    per_record = [task_labels(extract_statements(r), statements) for r in reports]
    return {name: np.array([[lab in rec.get(name, ()) for lab in labels] for rec in per_record], dtype=bool)
            for name, labels in label_sets.items()}
