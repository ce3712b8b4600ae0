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


_GRAM_IDS: dict = {}  # word or word pair -> int; bounded by the vocabulary of the reports compared


@functools.lru_cache(maxsize=1024)
def _gram_ids(text: str) -> np.ndarray:
    """Sorted ids of the text's distinct words and word bigrams. A small cache: the
    commonest training reports recur as candidates (a cache of every report seen grew
    each batch worker by ~15 MB over its first few thousand records and gained nothing)."""
    words = text.split()
    grams = set(words) | {(words[i], words[i + 1]) for i in range(len(words) - 1)}
    return np.array(sorted(_GRAM_IDS.setdefault(g, len(_GRAM_IDS)) for g in grams), np.int64)


def mbr_select(candidates: list[str]) -> str:
    """The candidate with the highest summed n-gram F1 (unigrams + bigrams) to the others
    (itself included, weighted by how often each candidate occurs); ties go to the first.

    F1 of two texts = 2 |A & B| / (|A| + |B|) over their sets of distinct words and word
    pairs; all pairs at once as one small matrix product. Scores are compared after rounding
    to 1e-9, so that candidates that tie exactly are not ordered by summation rounding.

    >>> mbr_select(["sinus rhythm normal ecg", "sinus rhythm normal ecg", "atrial fibrillation"])
    'sinus rhythm normal ecg'
    """
    count: dict[str, int] = {}
    for c in candidates:
        count[c] = count.get(c, 0) + 1
    uniq = list(count)  # first-seen order: deterministic ties
    if len(uniq) == 1:
        return uniq[0]
    ids = [_gram_ids(c) for c in uniq]
    sizes = np.array([len(g) for g in ids], dtype=np.float64)
    _, columns = np.unique(np.concatenate(ids), return_inverse=True)
    member = np.zeros((len(uniq), int(columns.max()) + 1 if len(columns) else 0))
    member[np.repeat(np.arange(len(uniq)), sizes.astype(np.int64)), columns] = 1.0
    common = member @ member.T
    total = sizes[:, None] + sizes[None, :]
    f1 = np.divide(2.0 * common, total, out=np.zeros_like(common), where=total > 0)
    score = np.round(f1 @ np.array([count[c] for c in uniq], dtype=np.float64), 9)
    return uniq[int(np.argmax(score))]  # the first of the best
