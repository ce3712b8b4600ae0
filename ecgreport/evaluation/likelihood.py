"""Zero-shot scoring by the report decoder's likelihood of a label's prompts.

A label's likelihood score for an ECG is the pointwise mutual information between the ECG
and the label's words, as the decoder sees them:

    pmi(prompt, ecg) = mean_t log p(w_t | <bos> w_<t, ecg) - mean_t log p(w_t | <bos> w_<t, flat)
    score(label, ecg) = mean over the label's prompts of pmi(prompt, ecg)

- the prompt's words w_1..w_n are its `WordTokenizer` ids after ``<bos>``, without ``<eos>``
  (a prompt is a phrase of a report, not a whole report); each term is length-normalised
  (the mean over its n tokens), so long prompts do not dominate short ones;
- the ECG-free baseline is the decoder conditioned on a flat signal (all leads 0 mV, the
  model's input after normalisation of a flat line): it needs no data, is fixed per bundle,
  and asks "how much more likely are these words for this ECG than for no ECG at all";
- note that for ranking ECGs by one label (AUC) the baseline is a constant per label and
  cancels: it matters only where labels are compared with each other in one record.

`combine_z` adds the per-label z-scores of two scores (e.g. this one and the direct cosine),
with means and standard deviations taken over the records scored.

Runs on the bundle's ONNX decoder step graph through `ModelRunner` (numpy and onnxruntime,
no torch): one decoder step per prompt token, batched over (records x prompts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Decoder rows per call: (records x prompts) in one batch. Bounded so that the repeated
# cross-attention cache stays ~100-200 MB (about 0.4 MB per row for a 2-layer, 256-wide decoder).
MAX_ROWS = 512


def prompt_ids(tokenizer, prompts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each prompt: ``<bos>`` w_1 ... w_n (no ``<eos>``), at most `max_tokens` ids.

    A prompt with no word in the decoder's vocabulary still gets ``<unk>`` tokens and so a
    (low) likelihood; one that is empty after tokenising is an error."""
    out = []
    for p in prompts:
        ids = tokenizer.encode(p, max_tokens + 1)
        ids = ids[:-1] if ids and ids[-1] == tokenizer.EOS else ids
        if len(ids) < 2:
            raise ValueError(f"prompt {p!r} has no words for the decoder")
        out.append(ids[:max_tokens])
    return out


def mean_logprobs(runner, enc, ids: list[list[int]], max_rows: int = MAX_ROWS) -> np.ndarray:
    """(B, P) length-normalised log-likelihood of each prompt (ids from `prompt_ids`) given each
    encoded record of `enc` (an `Encoded` from ``runner.encode``), teacher-forced through the
    bundle's decoder step graph. Nats per token, <= 0."""
    n_rec, n_prompts = len(enc), len(ids)
    length = max(len(s) for s in ids)
    tokens = np.zeros((n_prompts, length), np.int64)
    mask = np.zeros((n_prompts, length - 1), bool)  # which next-token targets are real
    for j, s in enumerate(ids):
        tokens[j, : len(s)] = s
        mask[j, : len(s) - 1] = True
    out = np.zeros((n_rec, n_prompts), np.float64)
    per_call = max(1, max_rows // n_prompts)
    for start in range(0, n_rec, per_call):
        recs = np.arange(start, min(start + per_call, n_rec))
        rows = np.repeat(recs, n_prompts)                     # record of each decoder row
        cross = runner._take(enc.cross, rows)
        past = runner._empty_past(len(rows))
        tok = np.tile(tokens, (len(recs), 1))                 # (rows, length)
        msk = np.tile(mask, (len(recs), 1))
        total = np.zeros(len(rows), np.float64)
        for t in range(length - 1):
            logits, past = runner._step(tok[:, t], past, cross)
            logits = logits.astype(np.float64)
            top = logits.max(-1, keepdims=True)
            logz = top[:, 0] + np.log(np.exp(logits - top).sum(-1))
            total += np.where(msk[:, t], logits[np.arange(len(rows)), tok[:, t + 1]] - logz, 0.0)
        out[recs] = (total / msk.sum(1)).reshape(len(recs), n_prompts)
    return out


class LikelihoodScorer:
    """Likelihood scores of a bundle's label sets (see the module docstring).

    runner: a `ModelRunner`; label_prompts: {set: [[prompt, ...] per label]} in the order of
    the set's labels. The prompts' tokens and the flat-signal baseline are computed once.
    """

    def __init__(self, runner, label_prompts: dict[str, list[list[str]]]):
        self.runner = runner
        self.label_prompts = label_prompts
        self.prompts = list(dict.fromkeys(p for labels in label_prompts.values() for ps in labels for p in ps))
        index = {p: i for i, p in enumerate(self.prompts)}
        self._cols = {name: [[index[p] for p in ps] for ps in labels] for name, labels in label_prompts.items()}
        self.ids = prompt_ids(runner.bundle.tokenizer, self.prompts, runner.max_tokens)
        flat = np.zeros((1, len(runner.bundle.leads), runner.bundle.window_samples), np.float32)
        self.baseline = mean_logprobs(runner, runner.encode(flat), self.ids)[0]  # (P,)

    def prompt_pmi(self, enc) -> np.ndarray:
        """(B, P): pmi of every distinct prompt (``self.prompts``) for each encoded record."""
        return mean_logprobs(self.runner, enc, self.ids) - self.baseline

    def scores(self, enc) -> dict[str, np.ndarray]:
        """{set: (B, n_labels)}: the mean pmi over each label's prompts."""
        pmi = self.prompt_pmi(enc)
        return {name: np.stack([pmi[:, c].mean(axis=1) for c in cols], axis=1) for name, cols in self._cols.items()}


def combine_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, L) + (N, L) -> (N, L): per column, z-score of `a` plus z-score of `b` (mean and
    standard deviation over the N rows; a constant column contributes 0).

    >>> combine_z(np.array([[0.0], [2.0]]), np.array([[5.0], [1.0]])).ravel().tolist()
    [0.0, 0.0]
    """
    def z(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        sd = x.std(axis=0)
        return np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)

    return z(a) + z(b)
