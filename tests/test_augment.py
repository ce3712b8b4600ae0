"""Training augmentations (ecgreport.training.augment) and the train options that set them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import PTBXL_MINI, skip_without_fixtures
from ecgreport.cli import app
from ecgreport.signal.preprocess import CLIP_MV
from ecgreport.training.augment import SHIFT_MAX_S, augment
from ecgreport.training.config import TrainConfig


def batch(seed: int = 1, b: int = 16, t: int = 1000) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((b, 12, t)) * 0.3).astype(np.float32)


def test_probability_zero_changes_nothing_and_one_changes_every_record():
    x = batch()
    assert np.array_equal(augment(x, np.random.default_rng(0), 100.0, p=0.0), x)
    y = augment(x, np.random.default_rng(0), 100.0, p=1.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert all(not np.allclose(y[i], x[i]) for i in range(len(x)))


def test_same_rng_same_copy_and_input_untouched():
    x = batch()
    before = x.copy()
    a = augment(x, np.random.default_rng(5), 100.0)
    b = augment(x, np.random.default_rng(5), 100.0)
    assert np.array_equal(a, b) and np.array_equal(x, before)
    assert not np.array_equal(a, augment(x, np.random.default_rng(6), 100.0))


def test_output_is_clipped_like_real_input():
    x = np.full((4, 12, 500), CLIP_MV, np.float32)
    y = augment(x, np.random.default_rng(0), 100.0, p=1.0)
    assert y.max() <= CLIP_MV and y.min() >= -CLIP_MV


def test_each_perturbation_stays_within_its_stated_size():
    """A flat zero record: what is added is wander + noise only (scaling zero is zero, a roll of
    zero is zero), so its size is bounded by WANDER_MAX_MV plus a few noise SDs."""
    from ecgreport.training.augment import NOISE_MAX_MV, WANDER_MAX_MV

    y = augment(np.zeros((64, 12, 1000), np.float32), np.random.default_rng(0), 100.0, p=1.0)
    assert np.abs(y).max() <= WANDER_MAX_MV + 6 * NOISE_MAX_MV
    assert np.abs(y).max() > 0.5 * WANDER_MAX_MV


def test_time_shift_is_a_roll_of_at_most_half_a_second():
    """With only a shift possible (an impulse record, p=1): the impulse moves by <= 0.5 s."""
    x = np.zeros((32, 12, 1000), np.float32)
    x[:, :, 500] = 1.0
    y = augment(x, np.random.default_rng(3), 100.0, p=1.0)
    peaks = np.abs(y[:, 0]).argmax(axis=1)
    assert np.abs(peaks - 500).max() <= SHIFT_MAX_S * 100
    assert len(set(peaks.tolist())) > 5


@skip_without_fixtures
def test_dropped_lead_stays_exactly_zero_after_augmentation(text_cache):
    """Lead drop-out mimics a zero-filled missing lead: noise or wander must not refill it."""
    from ecgreport.reports import WordTokenizer
    from ecgreport.training.data import load_split
    from ecgreport.training.loop import Batches

    data = load_split(PTBXL_MINI, {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"})
    tok = WordTokenizer.build(data.reports, min_count=1)
    b = Batches(data, tok, 32, np.zeros((len(data.unique_reports), 8), np.float32))
    x = b.get(np.arange(len(data)), torch.device("cpu"), lead_dropout=1.0, rng=np.random.default_rng(0),
              augment=1.0)[0].numpy()
    zero_leads = (np.abs(x).max(axis=2) == 0).sum(axis=1)
    assert (zero_leads >= 1).all()


def test_configs_from_before_augmentation_read_as_none():
    assert TrainConfig.from_dict({"epochs": 3}).augment == 0.0
    with pytest.raises(ValueError, match="augmentation"):
        TrainConfig(augment=1.5)


@skip_without_fixtures
def test_train_command_writes_augment_and_channels(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(PTBXL_MINI), "--out", str(out), "--train-split", "1-10", "--val-split", "9",
            "--limit", "4", "--batch-size", "2", "--epochs", "1", "--device", "cpu", "--no-zero-shot-metric",
            "--quiet", "--augment", "0.5", "--channels", "8,8,16,16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["augment"] == 0.5
    assert json.loads((out / "model_config.json").read_text())["resnet_channels"] == [8, 8, 16, 16]


@pytest.mark.parametrize("value", ["8,8,16", "a,b,c,d", "8,8,16,0"])
def test_bad_channels_are_a_usage_error(tmp_path, value):
    result = CliRunner().invoke(app, ["train", "--data", str(PTBXL_MINI), "--out", str(tmp_path / "o"),
                                      "--channels", value])
    assert result.exit_code == 2
    assert "--channels" in result.output
