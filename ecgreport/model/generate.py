"""Greedy report generation in torch, with the same cached step the ONNX bundle runs."""

from __future__ import annotations

import torch

from ecgreport.model.model import ECGReportModel
from ecgreport.reports import repeated_ngram_bans


@torch.inference_mode()
def greedy_generate(model: ECGReportModel, x: torch.Tensor, bos: int, eos: int, max_len: int,
                    return_embedding: bool = False):
    """x (B, 12, window) -> token ids per record, without <bos>, stopping at <eos>; with
    return_embedding, also the (B, text_dim) embedding computed on the way."""
    model.eval()
    emb, memory = model.encode(x)
    cross = model.decoder.cross_kv(memory)
    b = x.shape[0]
    past = model.decoder.empty_past(b, memory.dtype, x.device)
    token = torch.full((b,), bos, dtype=torch.long, device=x.device)
    out = torch.zeros(b, 0, dtype=torch.long, device=x.device)
    done = torch.zeros(b, dtype=torch.bool, device=x.device)
    for _ in range(max_len - 1):
        logits, past = model.decoder.step(token, past, cross)
        seqs = out.tolist()
        for row in range(b):
            bans = repeated_ngram_bans(seqs[row])
            if bans:
                logits[row, bans] = float("-inf")
        token = logits.argmax(dim=-1)
        token = torch.where(done, torch.full_like(token, eos), token)
        out = torch.cat([out, token[:, None]], dim=1)
        done |= token == eos
        if bool(done.all()):
            break
    result = []
    for row in out.tolist():
        result.append(row[: row.index(eos)] if eos in row else row)
    return (result, emb) if return_embedding else result
