"""ECGReportModel: encoder + projection into the text model's space + report decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecgreport.model.config import ModelConfig
from ecgreport.model.decoder import ReportDecoder
from ecgreport.model.encoder import build_encoder, sinusoidal_positions


class ECGReportModel(nn.Module):
    """x (B, 12, window) normalised mV -> embedding (B, text_dim), unit length, in the text
    model's space ("generated embedding"), and memory tokens that the decoder attends to.

    The aligned embedding is also the decoder's first memory token, so the report is written
    from the same representation that zero-shot scoring uses.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg = cfg
        d = cfg.width
        self.encoder = build_encoder(cfg)
        self.head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, cfg.text_dim))
        self.emb_to_memory = nn.Linear(cfg.text_dim, d)
        self.memory_norm = nn.LayerNorm(d)
        self.register_buffer("memory_positions", sinusoidal_positions(512, d), persistent=False)
        self.decoder = ReportDecoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (embedding (B, text_dim) unit length, memory (B, 1 + n_tokens, width))."""
        tokens = self.encoder(x)
        pooled = torch.cat([tokens.mean(dim=1), tokens.amax(dim=1)], dim=-1)
        emb = F.normalize(self.head(pooled), dim=-1)
        tokens = tokens + self.memory_positions[: tokens.shape[1]]
        memory = torch.cat([self.emb_to_memory(emb)[:, None], tokens], dim=1)
        return emb, self.memory_norm(memory)

    def forward(self, x: torch.Tensor, tokens_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: -> (embedding (B, text_dim), logits (B, T, vocab))."""
        emb, memory = self.encode(x)
        return emb, self.decoder(tokens_in, self.decoder.cross_kv(memory))


@torch.inference_mode()
def embed_signals(model: ECGReportModel, signals, device="cpu", batch_size: int = 256):
    """signals (N, 12, window) float32 numpy -> (N, text_dim) float32 numpy embeddings, in eval mode."""
    import numpy as np

    model.eval()
    out = [model.encode(torch.from_numpy(signals[i : i + batch_size]).to(device))[0].float().cpu().numpy()
           for i in range(0, len(signals), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.cfg.text_dim), np.float32)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
