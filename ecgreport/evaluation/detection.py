"""Disease detection scores: macro ROC AUC and its bootstrap confidence interval.

The PTB-XL benchmark protocol (Strodthoff et al. 2021): the AUC of each class from the
continuous scores (no threshold), averaged over classes with equal weight; uncertainty from
bootstrap resamples of the test records. Everything is numpy/scipy; no torch, no sklearn.

AUC is the Mann-Whitney statistic: the probability that a random positive record scores
higher than a random negative one, ties counting one half. A class whose labels in the
evaluated records are all positive or all negative has no AUC: it is NaN in the per-class
dict and left out of the macro mean (with a logged warning), as roc_auc_score would refuse it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

logger = logging.getLogger(__name__)


def _check(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if s.ndim == 1:
        s = s[:, None]
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"y_true {np.shape(y_true)} and scores {np.shape(scores)} must both be (N, C)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1 or False/True")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    return y.astype(bool), s


def _class_names(n_classes: int, classes: Sequence[str] | None) -> list:
    if classes is None:
        return list(range(n_classes))
    if len(classes) != n_classes:
        raise ValueError(f"{len(classes)} class names for {n_classes} score columns")
    return list(classes)


def per_class_auc(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each column, shape (C,); NaN where a column has only one label value.

    Ranks are computed per column with ties averaged, so tied scores count one half.
    """
    y, s = _check(y_true, scores)
    n_pos = y.sum(axis=0).astype(np.float64)
    n_neg = y.shape[0] - n_pos
    ranks = rankdata(s, axis=0)  # average ranks for ties
    rank_sum_pos = np.where(y, ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def macro_auc(
    y_true: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str] | None = None,
) -> tuple[float, dict]:
    """Macro ROC AUC over classes, and the AUC of each class.

    y_true: (N, C) bool, scores: (N, C) float (any monotone scale: logits, similarities).
    Returns ``(macro, per_class)``; ``per_class`` maps the class name (or column index if
    `classes` is None) to its AUC, NaN for a class with no positive or no negative record;
    NaN classes are excluded from ``macro`` (NaN if every class is).

    >>> macro_auc(np.array([[1], [0], [1], [0]]), np.array([[0.9], [0.1], [0.4], [0.4]]))
    (0.875, {0: 0.875})
    """
    auc = per_class_auc(y_true, scores)
    names = _class_names(auc.shape[0], classes)
    undefined = [names[i] for i in np.flatnonzero(np.isnan(auc))]
    if undefined:
        logger.warning("AUC undefined (only one label value) for %d class(es), left out of the "
                       "macro mean: %s", len(undefined), ", ".join(map(str, undefined)))
    macro = float(np.nanmean(auc)) if not np.isnan(auc).all() else math.nan
    return macro, {name: float(a) for name, a in zip(names, auc)}


def _weighted_auc(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of each class under record weights (bootstrap counts), shape (B, C).

    y: (N, C) bool, s: (N, C) float, weights: (B, N) counts. Equivalent to `per_class_auc`
    on the records repeated weight times, but computed from one sort per class: per tie
    group g, the positives in g beat the negatives below g and tie with the negatives in g.
    """
    n_resamples = weights.shape[0]
    out = np.empty((n_resamples, y.shape[1]))
    w = weights.astype(np.float64)
    for c in range(y.shape[1]):
        order = np.argsort(s[:, c], kind="stable")
        sorted_scores = s[order, c]
        group_starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        w_sorted = w[:, order]
        positive = y[order, c]
        pos = np.add.reduceat(np.where(positive, w_sorted, 0.0), group_starts, axis=1)
        neg = np.add.reduceat(np.where(positive, 0.0, w_sorted), group_starts, axis=1)
        neg_below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, c] = wins / (pos.sum(axis=1) * neg.sum(axis=1))
    return out


def bootstrap_auc_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) confidence interval of the macro AUC.

    Records are resampled with replacement. As in the PTB-XL benchmark
    (``get_appropriate_bootstrap_samples``), a resample in which some class has no positive
    (or no negative) record is discarded and drawn again, so exactly `n_resamples` valid
    resamples are used. Classes whose AUC is undefined on the full data are left out, as in
    `macro_auc`. The benchmark reports the 5th and 95th percentiles (``alpha=0.1``); the
    default here is the 95% interval. Deterministic for a fixed `seed`.

    1,000 resamples of 2,000 records x 44 classes take about a second (one sort per class,
    resamples as count vectors).
    """
    y, s = _check(y_true, scores)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    defined = ~np.isnan(per_class_auc(y, s))
    if not defined.any():
        raise ValueError("no class has both positive and negative records: AUC is undefined")
    y, s = y[:, defined], s[:, defined]
    n_records = y.shape[0]
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    n_kept = n_drawn = 0
    batch = min(n_resamples, 250)  # bounds memory to batch x N counts
    while n_kept < n_resamples:
        if n_drawn > 20 * n_resamples:
            raise ValueError(f"only {n_kept} of {n_drawn} resamples had every class positive and "
                             "negative; too few records of some class for a bootstrap")
        idx = rng.integers(0, n_records, size=(batch, n_records))
        offsets = (np.arange(batch) * n_records)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=batch * n_records).reshape(batch, n_records)
        n_drawn += batch
        n_pos = counts @ y.astype(np.float64)
        valid = ((n_pos > 0) & (n_pos < n_records)).all(axis=1)
        counts = counts[valid][: n_resamples - n_kept]
        if counts.shape[0]:
            kept.append(_weighted_auc(y, s, counts).mean(axis=1))
            n_kept += counts.shape[0]
    if n_drawn > n_resamples:
        logger.info("bootstrap: drew %d resamples to keep %d with every class present", n_drawn, n_resamples)
    macro = np.concatenate(kept)
    low, high = np.quantile(macro, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
