"""The training checkpoint format: written by `training.loop`, read by export and evaluate.

A checkpoint (`RUN/best.pt`, `RUN/last.pt`) is one plain dict saved with `torch.save`:

  model          the ECGReportModel state_dict
  optimizer      the AdamW state_dict (for --resume)
  epoch, step    the last finished epoch (0-based) and optimizer step
  config         TrainConfig.to_dict(): `data` is the dataset folder's absolute path, so
                 export finds the same data from any working directory
  model_config   ModelConfig.to_dict()
  tokenizer      WordTokenizer.to_dict()
  text_model     the frozen text model's name (equal to config["text_model"])
  metrics        the validation metrics of that epoch
  best_val_loss, bad_epochs   early-stopping state
  versions       library versions; rng: {"torch": the torch RNG state}

This module is the only one that reads or writes these keys.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ecgreport.errors import BundleError
from ecgreport.model.config import ModelConfig
from ecgreport.model.model import ECGReportModel
from ecgreport.reports import WordTokenizer
from ecgreport.training.config import TrainConfig

REQUIRED = ("model", "model_config", "tokenizer")


def save_checkpoint(path: Path, *, model, optimizer, epoch: int, step: int, config: TrainConfig,
                    model_config: ModelConfig, tokenizer: WordTokenizer, metrics: dict,
                    best_val_loss: float, bad_epochs: int, versions: dict) -> None:
    """Write the checkpoint atomically (a temporary file, then a rename)."""
    path = Path(path)
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
        "config": config.to_dict(), "model_config": model_config.to_dict(), "tokenizer": tokenizer.to_dict(),
        "text_model": config.text_model, "metrics": metrics, "best_val_loss": best_val_loss,
        "bad_epochs": bad_epochs, "versions": versions, "rng": {"torch": torch.get_rng_state()},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint dict; BundleError when the file is not an ecgreport checkpoint."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such checkpoint") from None
    except Exception as err:  # noqa: BLE001 - pickle/zip errors of a file that is not a checkpoint
        raise BundleError(f"{path}: not a readable training checkpoint ({err})") from None
    if not isinstance(ckpt, dict):
        raise BundleError(f"{path}: not an ecgreport training checkpoint")
    for key in REQUIRED:
        if key not in ckpt:
            raise BundleError(f"{path}: not an ecgreport training checkpoint (no {key!r})")
    return ckpt


def train_config(ckpt: dict) -> TrainConfig:
    """The run's TrainConfig (older checkpoints' fold names are mapped to splits)."""
    return TrainConfig.from_dict(ckpt.get("config", {}))


def load_checkpoint(path: Path) -> tuple[ECGReportModel, WordTokenizer, dict]:
    """(model in eval mode on the CPU, its tokenizer, the checkpoint dict)."""
    ckpt = read_checkpoint(path)
    model = ECGReportModel(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), WordTokenizer.from_dict(ckpt["tokenizer"]), ckpt
