"""Shared test helpers: where the real fixture records live, and tiny WFDB record writers.

The fixtures are real PTB-XL records copied into ``tests/data/fixtures`` (CC BY 4.0; source
and attribution in ``tests/data/README.md``), so the whole suite runs in any clone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import wfdb

FIXTURES = Path(__file__).resolve().parent / "data" / "fixtures"

_MISSING = f"fixture records not found at {FIXTURES} (they are part of the repository: a partial checkout?)"


@pytest.fixture
def fixtures_dir() -> Path:
    """The fixtures folder (``ptb-xl-mini/``, ``challenge-2021/``); skips if absent."""
    if not FIXTURES.is_dir():
        pytest.skip(_MISSING)
    return FIXTURES


def fixture_headers(*subdirs: str) -> list:
    """Every ``.hea`` under the given fixture subfolders, sorted, as ``pytest.param``s
    (id: the record name) for ``parametrize``; one skipped param if they are absent."""
    headers = sorted(p for d in subdirs for p in (FIXTURES / d).rglob("*.hea"))
    if not headers:
        return [pytest.param(None, marks=pytest.mark.skip(reason=_MISSING), id="no-fixtures")]
    return [pytest.param(p, id=p.stem) for p in headers]


skip_without_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=_MISSING)


def write_record(
    directory: Path,
    name: str,
    signal: np.ndarray,
    sig_names: list[str],
    fs_hz: float = 100,
    units: str | list[str] = "mV",
    fmt: str = "16",
    adc_gain: float = 200.0,
) -> Path:
    """Write a WFDB record with ``wfdb.wrsamp``; return its ``.hea`` path.

    ``signal``: ``(n_samples, n_sig)`` in ``units`` (wfdb's layout), NaN allowed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    n_sig = signal.shape[1]
    if isinstance(units, str):
        units = [units] * n_sig
    wfdb.wrsamp(
        name,
        fs=fs_hz,
        units=list(units),
        sig_name=list(sig_names),
        p_signal=np.asarray(signal, dtype=np.float64),
        fmt=[fmt] * n_sig,
        adc_gain=[adc_gain] * n_sig,
        baseline=[0] * n_sig,
        write_dir=str(directory),
    )
    return directory / f"{name}.hea"


def ecg_like(n_samples: int, n_sig: int, fs_hz: float = 100, seed: int = 0) -> np.ndarray:
    """A ``(n_samples, n_sig)`` test signal in mV: distinct per lead, within ±2 mV."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / fs_hz
    freqs = rng.uniform(0.8, 3.0, size=n_sig)
    signal = np.sin(2 * np.pi * freqs * t[:, None]) + 0.1 * rng.normal(size=(n_samples, n_sig))
    return signal + np.arange(n_sig) * 0.05


# ---------------------------------------------------------------- tiny trained models

PTBXL_MINI = FIXTURES / "ptb-xl-mini"
ALL_FOLDS = tuple(range(1, 11))
VAL_FOLDS = (9,)  # the official validation fold; ptb-xl-mini has 5 records in it
# A model small enough that a training step takes milliseconds on one CPU thread.
TINY_MODEL = {"width": 32, "resnet_channels": (16, 16, 32, 32), "decoder_layers": 1,
              "decoder_heads": 2, "decoder_ff": 64}


def tiny_train_config(out: Path, data: Path = PTBXL_MINI, **changes):
    """A TrainConfig for the tiny model on ptb-xl-mini (every fold trains, fold 9 validates)."""
    from ecgreport.training.config import TrainConfig

    settings = dict(data=str(data), out=str(out), train_folds=ALL_FOLDS, val_folds=VAL_FOLDS,
                    epochs=1, batch_size=4, warmup_steps=2, device="cpu", seed=0,
                    model_overrides=dict(TINY_MODEL))
    settings.update(changes)
    return TrainConfig(**settings)


def quiet_console():
    """A rich Console that writes into a string, so training logs stay out of test output."""
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=120)


@pytest.fixture(scope="session")
def one_torch_thread():
    """One intra-op thread for torch. The tiny models gain nothing from more, and OpenMP
    threads spin-waiting against other load on a small machine make a step 100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory):
    """Report text embeddings cached for the session in a temporary folder, not in ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("text-cache")
        mp.setenv("ECGREPORT_CACHE", str(folder))
        yield folder


@dataclass
class TinyRun:
    """A finished tiny training run: its folder, config, and the model's outputs on the
    validation records at the last epoch, recorded in memory just before last.pt was saved."""

    run_dir: Path
    config: object
    val_signals: np.ndarray        # (N, 12, window) the validation inputs
    val_tokens: np.ndarray         # (N, T) teacher-forcing input tokens
    last_embedding: np.ndarray     # (N, D) model.encode(x)[0] at the last epoch
    last_logits: np.ndarray        # (N, T, V) model(x, tokens)[1] at the last epoch


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, one_torch_thread, text_cache) -> TinyRun:
    """The tiny model trained on ptb-xl-mini with the fold-9 zero-shot metric on.

    20 epochs rather than 1: after one epoch the decoder writes only <bos>, and parity and
    beam-search tests on empty reports would prove nothing.
    """
    if not PTBXL_MINI.is_dir():
        pytest.skip(_MISSING)
    import torch

    from ecgreport.training.loop import train
    from ecgreport.training.zeroshot import superclass_auc_fn

    cfg = tiny_train_config(tmp_path_factory.mktemp("tiny-run") / "run", epochs=20, lr=3e-3,
                            warmup_steps=5, patience=1000, min_word_count=1)
    zero_shot = superclass_auc_fn(PTBXL_MINI)
    seen: dict = {}

    def record_then_zero_shot(model, val_set, text, device):
        x = torch.from_numpy(val_set.signals)
        tokens = torch.full((len(val_set), 8), 1, dtype=torch.long)  # <bos> then 7 more steps
        tokens[:, 1:] = torch.arange(4, 11)
        with torch.inference_mode():
            seen.update(signals=val_set.signals.copy(), tokens=tokens.numpy(),
                        embedding=model.encode(x)[0].numpy().copy(),
                        logits=model(x, tokens)[1].numpy().copy())
        return zero_shot(model, val_set, text, device)

    run_dir = train(cfg, console=quiet_console(), zero_shot_fn=record_then_zero_shot)
    return TinyRun(run_dir, cfg, seen["signals"], seen["tokens"], seen["embedding"], seen["logits"])


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """``best.pt`` of the tiny run."""
    return tiny_run.run_dir / "best.pt"


def parity_records(n_max: int = 64) -> np.ndarray:
    """The first 10 s of every fixture record (PTB-XL 100 Hz and Challenge 500 Hz), as the
    model's input at 100 Hz: (N, 12, 1000) float32."""
    from ecgreport.commands.export import _parity_inputs

    x, source = _parity_inputs([PTBXL_MINI / "records100", FIXTURES / "challenge-2021"], 1000, 100.0,
                               n_max=n_max)
    assert source == "records"
    return x


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_checkpoint) -> Path:
    """tiny_checkpoint exported to an ONNX bundle (PTB-XL label sets), parity checked on
    every fixture record."""
    from ecgreport.onnx.export import export_bundle

    out = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    export_bundle(tiny_checkpoint, out, parity_records(), scp_statements=PTBXL_MINI / "scp_statements.csv")
    return out
