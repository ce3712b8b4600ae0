"""Training settings: a frozen dataclass, written to config.json in every run folder."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""
    out: str = "runs/default"
    text_model: str = "all-MiniLM-L6-v2"
    encoder: str = "resnet"
    fs_hz: float = 100.0
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    val_folds: tuple[int, ...] = (9,)
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 300
    grad_clip: float = 1.0
    ce_weight: float = 1.0
    ot_weight: float = 1.0
    nce_weight: float = 1.0
    ot_reg: float = 0.05
    ot_iters: int = 200
    temperature: float = 0.07
    lead_dropout: float = 0.1      # chance that a record's training copy loses one random lead
    patience: int = 4              # epochs without a better validation loss before stopping
    seed: int = 0
    device: str = "auto"
    limit: int = 0                 # records per split, 0 = all (for smoke tests)
    min_word_count: int = 3
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields, e.g. {"width": 64} for tests

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("train_folds", "val_folds"):
            if key in values:
                values[key] = tuple(values[key])
        if "resnet_channels" in values.get("model_overrides", {}):
            values["model_overrides"] = {**values["model_overrides"],
                                         "resnet_channels": tuple(values["model_overrides"]["resnet_channels"])}
        return cls(**values)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
