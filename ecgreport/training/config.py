"""Training settings: a frozen dataclass, written to config.json in every run folder."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""                 # the dataset folder, absolute (see ecgreport.dataset.format)
    data_name: str = ""            # how model cards and reports name it, e.g. "PTB-XL"
    data_citation: str = ""
    out: str = "runs/default"
    text_model: str = "all-MiniLM-L6-v2"
    encoder: str = "resnet"
    fs_hz: float = 100.0
    # Values of the dataset's split column; empty: the dataset's default (train / val, or
    # PTB-XL's folds 1-8 / 9).
    train_split: tuple[str, ...] = ()
    val_split: tuple[str, ...] = ()
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    # Linear warm-up over this fraction of all steps (at least one step). 0.2 is about the
    # 300 fixed steps of the first PTB-XL recipe (~1,500 steps), and leaves warm-up early
    # on small data (2 of 10 steps). warmup_steps > 0 overrides it.
    warmup_fraction: float = 0.2
    warmup_steps: int = 0
    grad_clip: float = 1.0
    ce_weight: float = 1.0
    ot_weight: float = 1.0
    nce_weight: float = 1.0
    ot_reg: float = 0.05
    ot_iters: int = 200
    temperature: float = 0.07
    lead_dropout: float = 0.1      # chance that a record's training copy loses one random lead
    # Chance that each augmentation (amplitude, baseline wander, noise, time shift; see
    # ecgreport.training.augment) is applied to a record's training copy; 0 = none. Configs
    # written before augmentations existed read as 0, which is how they were trained.
    augment: float = 0.0
    patience: int = 4              # epochs without a better validation loss before stopping
    seed: int = 0
    device: str = "auto"
    limit: int = 0                 # records per split, 0 = all (for smoke tests)
    min_word_count: int = 3
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields, e.g. {"width": 64} for tests

    def __post_init__(self) -> None:
        from ecgreport.dataset.format import parse_splits

        for key in ("train_split", "val_split"):
            value = getattr(self, key)
            object.__setattr__(self, key, parse_splits(value) if value not in ((), "", None) else ())
        if not 0.0 <= self.augment <= 1.0:
            raise ValueError(f"augmentation probability {self.augment} must be in [0, 1]")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warm-up fraction {self.warmup_fraction} must be in [0, 1)")

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps for a run of `total_steps`."""
        if self.warmup_steps > 0:
            return self.warmup_steps
        return max(1, round(self.warmup_fraction * total_steps))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        # Configs written before the dataset format named the splits by PTB-XL's folds and
        # warmed up for a fixed 300 steps.
        for old, new in (("train_folds", "train_split"), ("val_folds", "val_split")):
            if old in data and new not in values:
                values[new] = tuple(str(v) for v in data[old])
        if "warmup_fraction" not in data and "warmup_steps" in data:
            values["warmup_steps"] = int(data["warmup_steps"])
        if "resnet_channels" in values.get("model_overrides", {}):
            values["model_overrides"] = {**values["model_overrides"],
                                         "resnet_channels": tuple(values["model_overrides"]["resnet_channels"])}
        return cls(**values)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
