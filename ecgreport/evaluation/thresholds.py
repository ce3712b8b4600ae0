"""Decision thresholds that turn zero-shot similarities into findings called present or absent.

Chosen on PTB-XL fold 9 without its ``scp_codes``: the pseudo-label of a record for a label is
whether the statement extractor (`ecgreport.evaluation.statements.extract_statements`) reads a
statement of that label in the record's own English report, aggregated to the label sets with
scp_statements.csv as the benchmark aggregates ``scp_codes`` (`labels.task_labels`). For each
label the threshold is the one that maximises F1 of ``similarity >= threshold`` against these
pseudo-labels.

Fallback: a label with fewer than ``MIN_POSITIVES`` pseudo-positive records in fold 9 (the
extractor never or rarely reads it, e.g. AMI, IVCD, RVH) gets the ``FALLBACK_QUANTILE``
quantile of its fold-9 similarities: it is called present for about the 1% of ECGs most like
its text. Its precision is unknown before evaluation; ``ecgreport evaluate`` measures it.

numpy only (no torch): `apply_thresholds` also runs inside ``ecgreport batch``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MIN_POSITIVES = 10
FALLBACK_QUANTILE = 0.99


def f1_threshold(scores: np.ndarray, positives: np.ndarray) -> tuple[float, float]:
    """The threshold t maximising F1 of ``scores >= t`` against boolean ``positives``.

    scores: (n,) similarities; positives: (n,) bool. Candidates are midpoints between
    consecutive distinct scores (and just above the top one, calling nothing), so the
    threshold does not sit on a training score. Ties in F1: the highest threshold (fewest calls).
    Returns (threshold, F1 at it).

    >>> f1_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True]))
    (0.5, 1.0)
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    if scores.shape != positives.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and positives {positives.shape} must be equal 1-D shapes")
    n_pos = int(positives.sum())
    if n_pos == 0:
        return math.inf, math.nan
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positives[order]
    # Calling the top k (k = 1..n): F1 = 2 tp / (k + n_pos); only cut between distinct scores.
    tp = np.cumsum(p)
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + n_pos)
    cut = np.r_[s[1:] < s[:-1], True]
    f1 = np.where(cut, f1, -1.0)
    best = int(np.argmax(f1))  # first maximum: the fewest calls
    below = s[best + 1] if best + 1 < len(s) else s[best] - 1e-3
    return float((s[best] + below) / 2), float(f1[best])


def choose_thresholds(scores: dict[str, np.ndarray], pseudo: dict[str, np.ndarray],
                      label_sets: dict[str, list[str]]) -> dict[str, dict[str, dict]]:
    """Per set and label: ``{"threshold", "source", "n_pseudo_positive", "f1_pseudo"}``.

    scores: {set: (n_records, n_labels)} similarities; pseudo: {set: (n_records, n_labels)}
    bool pseudo-labels, same rows; label_sets: {set: [label, ...]} in column order.
    ``source`` is ``"extractor F1"`` or ``"fallback quantile 0.99"`` (see the module docstring).
    """
    out: dict[str, dict[str, dict]] = {}
    for name, labels in label_sets.items():
        s, y = np.asarray(scores[name], dtype=np.float64), np.asarray(pseudo[name], dtype=bool)
        if s.shape != y.shape or s.shape[1] != len(labels):
            raise ValueError(f"set {name}: scores {s.shape}, pseudo-labels {y.shape}, {len(labels)} labels")
        out[name] = {}
        for j, label in enumerate(labels):
            n_pos = int(y[:, j].sum())
            if n_pos >= MIN_POSITIVES:
                t, f1 = f1_threshold(s[:, j], y[:, j])
                entry = {"threshold": round(t, 6), "source": "extractor F1", "f1_pseudo": round(f1, 4)}
            else:
                entry = {"threshold": round(float(np.quantile(s[:, j], FALLBACK_QUANTILE)), 6),
                         "source": f"fallback quantile {FALLBACK_QUANTILE}", "f1_pseudo": None}
            entry["n_pseudo_positive"] = n_pos
            out[name][label] = entry
    return out


def apply_thresholds(values: np.ndarray, thresholds: Sequence[float | None]) -> np.ndarray:
    """(..., n_labels) similarities -> (..., n_labels) int8 calls (1 present, 0 absent).
    A label without a threshold (None) is never called present."""
    t = np.array([math.inf if v is None else float(v) for v in thresholds], dtype=np.float64)
    return (np.asarray(values, dtype=np.float64) >= t).astype(np.int8)


def call_scores(truth: np.ndarray, calls: np.ndarray, labels: Sequence[str]) -> dict:
    """Precision, recall and F1 of 0/1 `calls` against 0/1 `truth`, both (n_records, n_labels).

    Per label (``per_label``: precision, recall, f1, support, called) and macro means over the
    labels with at least one true positive record (support > 0); precision is 0 for a label
    never called (sklearn's ``zero_division=0``).

    >>> call_scores(np.array([[1, 0], [0, 1]]), np.array([[1, 1], [0, 0]]), ["A", "B"])["macro_f1"]
    0.5
    """
    truth, calls = np.asarray(truth, dtype=bool), np.asarray(calls, dtype=bool)
    per = {}
    for j, label in enumerate(labels):
        tp = int((truth[:, j] & calls[:, j]).sum())
        support, called = int(truth[:, j].sum()), int(calls[:, j].sum())
        per[label] = {"precision": tp / called if called else 0.0,
                      "recall": tp / support if support else math.nan,
                      "f1": 2 * tp / (support + called) if support + called else math.nan,
                      "support": support, "called": called}
    scored = [v for v in per.values() if v["support"] > 0]

    def mean(key: str) -> float:
        return float(np.mean([v[key] for v in scored])) if scored else math.nan

    return {"macro_precision": mean("precision"), "macro_recall": mean("recall"), "macro_f1": mean("f1"),
            "n_labels": len(scored), "per_label": per}
