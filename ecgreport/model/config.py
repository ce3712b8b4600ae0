"""Model architecture as a frozen dataclass, written as JSON beside every checkpoint and bundle."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelConfig:
    encoder: str = "resnet"          # "resnet" (fast on CPU, default) or "transformer" (the paper's best)
    n_leads: int = 12
    fs_hz: float = 100.0
    window_samples: int = 1000       # 10 s at 100 Hz
    width: int = 256                 # channels of the encoder's last stage = decoder d_model
    resnet_channels: tuple[int, ...] = (32, 64, 128, 256)
    transformer_layers: int = 4
    patch_samples: int = 10          # transformer: one token per 0.1 s at 100 Hz
    text_dim: int = 384              # the text model's embedding size (all-MiniLM-L6-v2: 384)
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_ff: int = 512
    vocab_size: int = 0              # set from the tokenizer
    max_report_tokens: int = 64
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "resnet_channels" in values:
            values["resnet_channels"] = tuple(values["resnet_channels"])
        return cls(**values)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
