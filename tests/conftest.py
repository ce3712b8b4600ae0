"""Shared test helpers: where the real fixture records live, and tiny WFDB record writers.

The fixtures are not in the repository: CI clones the repo with ``shared/`` beside it,
so they are found relative to this file. Tests that need them skip when absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "fixtures"

_MISSING = f"fixture records not found at {FIXTURES} (clone the repo with shared/ beside it)"


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
