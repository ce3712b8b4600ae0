"""Loss terms. Each takes torch tensors and returns a scalar tensor with a gradient.

The published code computed OT with scipy on detached numpy arrays, so it trained nothing.
Here the entropic OT cost is solved with POT's log-domain Sinkhorn on torch tensors, and its
gradient reaches the encoder: d OT_eps / d M = P* (envelope theorem, exact for the entropic
objective OT_eps = <P*, M> + reg * KL(P* | a b^T)), so returning
`sum(M * P*.detach()) + reg * KL(P*)` (the KL part a constant) gives OT_eps's value with its
true gradient, without back-propagating through the solver's iterations. This is POT's
`ot.solve(M, a, b, reg, reg_type="KL", grad="envelope").value`. (The linear part
`<P*, M>` alone, which `ot.sinkhorn2` returns, has a different gradient.)
"""

from __future__ import annotations

import math

import ot
import torch
import torch.nn.functional as F


def ot_alignment_loss(
    ecg_emb: torch.Tensor, text_emb: torch.Tensor, reg: float = 0.05, n_iter: int = 200
) -> torch.Tensor:
    """Entropic OT between a batch of ECG embeddings and a batch of report embeddings.

    ecg_emb, text_emb: (B, D), unit length. Cost 1 - cosine (in [0, 2], so reg is on a known
    scale and the log-domain solver cannot underflow). Uniform weights on both sides.
    Returns OT_eps = <P*, C> + reg * KL(P* | 1/B^2), a scalar >= 0 whose gradient is P*.
    """
    cost = 1.0 - ecg_emb @ text_emb.T
    with torch.no_grad():
        n = cost.shape[0]
        a = torch.full((n,), 1.0 / n, dtype=cost.dtype, device=cost.device)
        # POT's default stopThr is never reached in float32; cap the iterations instead.
        plan = ot.sinkhorn(a, a, cost.detach().float(), reg, method="sinkhorn_log",
                           numItermax=n_iter, stopThr=1e-6, warn=False).to(cost.dtype)
        # KL(P | a a^T) with a = 1/n: a constant here, so the gradient stays exactly P*.
        kl = (plan * (torch.log(plan.clamp_min(1e-30)) + 2 * math.log(n))).sum()
    return (cost * plan).sum() + reg * kl


def paired_nce_loss(
    ecg_emb: torch.Tensor, text_emb: torch.Tensor, report_ids: torch.Tensor, temperature: float = 0.07
) -> torch.Tensor:
    """Symmetric InfoNCE where every pair with the same report text counts as positive.

    PTB-XL reports are templated: a batch often holds the same sentence several times. With a
    frozen text model identical reports have identical embeddings, and then this equals plain
    InfoNCE (the duplicate columns share their probability mass either way); the explicit
    targets keep it correct when report ids group texts whose embeddings differ.
    report_ids: (B,) int, equal for identical report strings.
    """
    logits = ecg_emb @ text_emb.T / temperature
    same = (report_ids[:, None] == report_ids[None, :]).to(logits.dtype)
    target = same / same.sum(dim=1, keepdim=True)
    loss_e2t = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_t2e = -(target * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (loss_e2t + loss_t2e)


def report_ce_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0, smoothing: float = 0.1):
    """Token cross-entropy of the decoder. logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id, label_smoothing=smoothing)
