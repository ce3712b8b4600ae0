"""Autoregressive report decoder with an explicit key/value cache.

The cache is explicit (tensors in, tensors out) rather than hidden in module state, so the
same `step` exports to one ONNX graph and generation in onnxruntime pays O(1) work per
token instead of re-running the whole prefix.

Shapes: d = width, H = heads, dh = d / H, M = memory tokens, P = past tokens; one entry
per layer (separate tensors, so no step slices a stacked cache):
  cross[i] = (k_t, v): k_t (B, H, dh, M) already transposed and scaled by 1/sqrt(dh),
                       v (B, H, M, dh); computed once per ECG by `cross_kv`
  past[i]  = (k, v):   (B, H, P, dh) each; grows by one position per generated token
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecgreport.model.config import ModelConfig
from ecgreport.model.encoder import sinusoidal_positions


class _DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out1 = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.q2 = nn.Linear(d, d)
        self.kv2 = nn.Linear(d, 2 * d)
        self.out2 = nn.Linear(d, d)
        self.ln3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, H, T, dh)
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, dh) -> (B, T, d)
        b, h, t, dh = x.shape
        return x.transpose(1, 2).reshape(b, t, h * dh)

    def cross_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """memory (B, M, d) -> k_t (B, H, dh, M) pre-scaled, v (B, H, M, dh).

        Transposing and scaling here, once per ECG, saves that work at every decoding step."""
        k, v = self.kv2(memory).chunk(2, dim=-1)
        k = self._split(k)
        return k.transpose(-1, -2) * (k.shape[-1] ** -0.5), self._split(v)

    def forward(self, x, cross_kt, cross_v, past_k=None, past_v=None):
        """x: (B, T, d). Without a past, attention is causal over x (training, teacher forcing);
        with a past, x holds the newest token(s) and sees every past position."""
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
            a = F.scaled_dot_product_attention(q, k, v)
        else:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.drop(self.out1(self._merge(a)))
        q2 = self._split(self.q2(self.ln2(x)))
        cross = torch.softmax(q2 @ cross_kt, dim=-1) @ cross_v
        x = x + self.drop(self.out2(self._merge(cross)))
        x = x + self.drop(self.ff(self.ln3(x)))
        return x, k, v


class ReportDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.width
        self.embed = nn.Embedding(cfg.vocab_size, d)
        # Tied input/output table: unit-variance inputs after the sqrt(d) scale, unit-scale logits.
        nn.init.normal_(self.embed.weight, std=d**-0.5)
        self.register_buffer("positions", sinusoidal_positions(cfg.max_report_tokens + 1, d), persistent=False)
        self.layers = nn.ModuleList(
            _DecoderLayer(d, cfg.decoder_heads, cfg.decoder_ff, cfg.dropout) for _ in range(cfg.decoder_layers)
        )
        self.ln_out = nn.LayerNorm(d)
        self.scale = d**0.5

    def cross_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """memory (B, M, d) -> one (k_t, v) pair per layer."""
        return [layer.cross_kv(memory) for layer in self.layers]

    def empty_past(self, batch: int, dtype=torch.float32, device=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        first = self.layers[0]
        dh = first.qkv.in_features // first.heads
        z = torch.zeros(batch, first.heads, 0, dh, dtype=dtype, device=device)
        return [(z, z) for _ in self.layers]

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.ln_out(h) @ self.embed.weight.T  # output layer tied to the embedding

    def forward(self, tokens: torch.Tensor, cross) -> torch.Tensor:
        """Teacher forcing: tokens (B, T) -> logits (B, T, vocab)."""
        h = self.embed(tokens) * self.scale + self.positions[: tokens.shape[1]]
        for layer, (k_t, v) in zip(self.layers, cross):
            h, _, _ = layer(h, k_t, v)
        return self._logits(h)

    def step(self, token, past, cross):
        """One generation step: token (B,) int64 -> logits (B, vocab), new past (one (k, v)
        pair per layer, each (B, H, P+1, dh))."""
        p = past[0][0].shape[2]
        h = self.embed(token[:, None]) * self.scale + self.positions[p : p + 1]
        new_past = []
        for layer, (pk, pv), (k_t, cv) in zip(self.layers, past, cross):
            h, k, v = layer(h, k_t, cv, pk, pv)
            new_past.append((k, v))
        return self._logits(h)[:, 0], new_past
