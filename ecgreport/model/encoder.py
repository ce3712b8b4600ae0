"""ECG encoders: (batch, 12 leads, samples) in mV -> a sequence of feature tokens.

Both return `tokens` of shape (batch, n_tokens, width); the model pools them into one
embedding (for alignment and zero-shot) and the decoder attends to all of them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ecgreport.model.config import ModelConfig


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 7, stride=stride, padding=3, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 7, padding=3, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(self.drop(h)))
        return torch.relu(h + self.skip(x))


class ResNet1d(nn.Module):
    """1D ResNet: stem (stride 2) + one residual block per stage (stride 1, 2, 2, 2).

    At 1000 input samples it yields 63 tokens of `width` channels (one per 0.16 s).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        chans = cfg.resnet_channels
        self.stem = nn.Sequential(
            nn.Conv1d(cfg.n_leads, chans[0], 15, stride=2, padding=7, bias=False),
            nn.BatchNorm1d(chans[0]),
            nn.ReLU(),
        )
        blocks, c_in = [], chans[0]
        for i, c in enumerate(chans):
            blocks.append(_ResBlock(c_in, c, stride=1 if i == 0 else 2, dropout=cfg.dropout))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv1d(c_in, cfg.width, 1) if c_in != cfg.width else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.stem(x))).transpose(1, 2)


class TransformerEncoder1d(nn.Module):
    """Patch embedding (a strided conv stem) + pre-norm transformer encoder, as in the paper."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(cfg.n_leads, cfg.width // 2, 7, stride=2, padding=3),
            nn.GELU(),
            nn.Conv1d(cfg.width // 2, cfg.width, cfg.patch_samples // 2, stride=cfg.patch_samples // 2),
        )
        n_tokens = cfg.window_samples // cfg.patch_samples
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, cfg.width))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.width, cfg.decoder_heads, cfg.decoder_ff, cfg.dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, cfg.transformer_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x).transpose(1, 2)
        h = h + self.pos[:, : h.shape[1]]
        return self.norm(self.layers(h))


def build_encoder(cfg: ModelConfig) -> nn.Module:
    if cfg.encoder == "resnet":
        return ResNet1d(cfg)
    if cfg.encoder == "transformer":
        return TransformerEncoder1d(cfg)
    raise ValueError(f"unknown encoder {cfg.encoder!r}: choose 'resnet' or 'transformer'")


def sinusoidal_positions(n: int, dim: int) -> torch.Tensor:
    """(n, dim) fixed sinusoidal position table."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table
