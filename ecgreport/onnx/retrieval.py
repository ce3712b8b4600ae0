"""Retrieval data of a bundle: the training folds in the model's embedding space.

Torch-free. Used for the nearest and consensus (minimum-Bayes-risk) training reports, and
for kNN zero-shot scoring.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass
class Retrieval:
    """The training folds in the model's embedding space, with their reports' text embeddings.

    Used for the retrieval report (the report of the nearest training ECG) and for kNN
    zero-shot scoring: a label's score is the mean similarity between the label's prompt
    embedding and the report embeddings of the k nearest training ECGs. Only free-text
    reports are involved, never diagnostic labels.
    """

    train_embeddings: np.ndarray   # (N, D) unit rows
    report_ids: np.ndarray         # (N,) index into reports
    report_embeddings: np.ndarray  # (U, D) text-model embeddings of the distinct reports
    reports: list[str]             # (U,) normalised report text
    k: int = 25

    def neighbours(self, embedding: np.ndarray, k: int) -> np.ndarray:
        """(B, D) -> (B, k) indices of the most similar training ECGs, best first."""
        sims = embedding @ self.train_embeddings.T
        k = min(k, sims.shape[1])
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)

    def label_scores(self, embedding: np.ndarray, report_label_sims: np.ndarray,
                     neighbours: np.ndarray | None = None) -> np.ndarray:
        """kNN zero-shot scores (B, L) from (U, L) = report_embeddings @ label_embeddings.T.
        ``neighbours``: ``self.neighbours(embedding, self.k)`` when already computed."""
        if neighbours is None:
            neighbours = self.neighbours(embedding, self.k)
        return report_label_sims[self.report_ids[neighbours]].mean(axis=1)


@functools.lru_cache(maxsize=1024)
def _ngrams(text: str) -> frozenset:
    # A small cache: the commonest training reports recur as candidates. A cache of every
    # report seen (thousands) made no measurable difference in speed, but grew each batch
    # worker by ~15 MB over its first few thousand records (docs/benchmarks.md, memory).
    words = text.split()
    return frozenset(words) | {tuple(words[i : i + 2]) for i in range(len(words) - 1)}


def _f1(a: frozenset, b: frozenset) -> float:
    common = len(a & b)
    return 0.0 if common == 0 else 2 * common / (len(a) + len(b))


def mbr_select(candidates: list[str]) -> str:
    """The candidate with the highest summed n-gram F1 (unigrams + bigrams) to the others
    (itself included, weighted by how often each candidate occurs); ties go to the first.

    >>> mbr_select(["sinus rhythm normal ecg", "sinus rhythm normal ecg", "atrial fibrillation"])
    'sinus rhythm normal ecg'
    """
    count: dict[str, int] = {}
    for c in candidates:
        count[c] = count.get(c, 0) + 1
    uniq = list(count)  # first-seen order: deterministic ties
    grams = [_ngrams(c) for c in uniq]
    weight = [count[c] for c in uniq]
    score = [w * _f1(g, g) for w, g in zip(weight, grams)]
    for i in range(len(uniq)):  # F1 is symmetric: each pair once
        for j in range(i + 1, len(uniq)):
            f = _f1(grams[i], grams[j])
            score[i] += weight[j] * f
            score[j] += weight[i] * f
    return uniq[max(range(len(uniq)), key=lambda i: (score[i], -i))]
