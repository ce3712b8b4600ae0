"""Resampling, the model's input normalisation, and the window policy (numpy/scipy only).

Window policy (``plan_windows``), in samples of the record as stored:

* ``window = round(window_s * fs_hz)`` samples; ``min_s`` is the shortest usable record.
* Shorter than ``min_s``: rejected (ValueError giving the reason; the caller reports the
  record as failed).
* From ``min_s`` up to one window: one window from the start, zero-padded at the end
  (``pad`` = the missing samples).
* One window, or longer but too short for two (e.g. 10.004 s at 500 Hz for 10 s
  windows): one window from the start, the rest ignored.
* Longer: ``min(max_windows, n_samples // window)`` non-overlapping windows spread
  evenly over the whole record, the first at the start and the last ending at the end.
  A 24 h Holter is thus sampled at ``max_windows`` places, not read in full. The plan
  depends only on its arguments (no randomness).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

logger = logging.getLogger(__name__)

CLIP_MV = 10.0
"""Model input is clipped to [-CLIP_MV, CLIP_MV] mV after removing each lead's median."""


def resample(signal: np.ndarray, fs_in_hz: float, fs_out_hz: float) -> np.ndarray:
    """Resample along the last axis: ``(n_leads, n)`` -> ``(n_leads, m)`` float32.

    Polyphase filtering (``scipy.signal.resample_poly``) by the ratio ``fs_out/fs_in``
    as a fraction with denominator at most 1000; ``m = ceil(n * up / down)``. Equal
    rates return the input as float32. Example: 500 Hz -> 100 Hz is up 1, down 5,
    ``(12, 5000)`` -> ``(12, 1000)``.
    """
    if fs_in_hz <= 0 or fs_out_hz <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in_hz} and {fs_out_hz} Hz")
    signal = np.asarray(signal)
    if fs_in_hz == fs_out_hz:
        return signal.astype(np.float32, copy=False)
    ratio = Fraction(fs_out_hz / fs_in_hz).limit_denominator(1000)
    if ratio != Fraction(fs_out_hz) / Fraction(fs_in_hz):
        logger.debug("resampling %s -> %s Hz approximated as %s", fs_in_hz, fs_out_hz, ratio)
    # Imported here: scipy.signal costs ~0.9 s at start-up and only resampling needs it.
    from scipy.signal import resample_poly

    out = resample_poly(signal.astype(np.float64, copy=False), ratio.numerator,
                        ratio.denominator, axis=-1)
    return out.astype(np.float32)


def model_window(signal_mv: np.ndarray, fs_hz: float, model_fs_hz: float, window_samples: int) -> np.ndarray:
    """One span of a record as the model reads it: ``(12, n)`` mV at ``fs_hz`` -> resampled
    to ``model_fs_hz``, normalised, then cut to ``window_samples`` or zero-padded at the end
    (after normalisation, so the padding sits at the baseline). ``(12, window_samples)`` float32.
    Training, export checks and ``batch`` all build their inputs with this.
    """
    x = normalise(resample(signal_mv, fs_hz, model_fs_hz))
    out = np.zeros((x.shape[0], window_samples), np.float32)
    n = min(window_samples, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


def normalise(signal_mv: np.ndarray) -> np.ndarray:
    """The model's input: ``(n_leads, n)`` mV -> ``(n_leads, n)`` float32.

    Per lead: subtract the median of its finite samples (0 if none), set non-finite
    samples (NaN, inf) to 0, clip to [-10, 10] mV. Training and inference both call
    this, so it defines what the model sees; change it and the model must be retrained.

    >>> normalise(np.array([[1.0, 2.0, np.nan, 30.0]]))
    array([[-1.,  0.,  0., 10.]], dtype=float32)
    """
    x = np.array(signal_mv, dtype=np.float32)  # a copy: the caller's array is untouched
    if x.shape[-1] == 0:
        return x
    finite = np.isfinite(x)
    if finite.all():
        x -= np.median(x, axis=-1, keepdims=True)
    else:
        for index in np.ndindex(x.shape[:-1]):
            lead, ok = x[index], finite[index]  # lead is a view into x
            if ok.any():
                lead -= np.median(lead[ok])
        x[~finite] = 0.0
    np.clip(x, -CLIP_MV, CLIP_MV, out=x)
    return x


@dataclass(frozen=True)
class WindowPlan:
    """Where to cut a record: windows ``[s, s + window)`` for ``s`` in ``starts``.

    All in samples of the original record; ``pad`` zeros go after the record's end
    (only for a record shorter than one window, which then has one window).
    """

    starts: list[int]
    window: int
    pad: int


def plan_windows(
    n_samples: int, fs_hz: float, window_s: float, min_s: float, max_windows: int
) -> WindowPlan:
    """Plan the windows of a record (policy in the module docstring).

    Raises ValueError for a record shorter than ``min_s`` or for invalid arguments.

    >>> plan_windows(n_samples=1000, fs_hz=100, window_s=10, min_s=5, max_windows=4)
    WindowPlan(starts=[0], window=1000, pad=0)
    >>> plan_windows(n_samples=700, fs_hz=100, window_s=10, min_s=5, max_windows=4)
    WindowPlan(starts=[0], window=1000, pad=300)
    >>> plan_windows(n_samples=5000, fs_hz=100, window_s=10, min_s=5, max_windows=3)
    WindowPlan(starts=[0, 2000, 4000], window=1000, pad=0)
    """
    if fs_hz <= 0 or window_s <= 0 or min_s < 0 or max_windows < 1:
        raise ValueError(
            f"invalid window arguments: fs_hz={fs_hz}, window_s={window_s}, "
            f"min_s={min_s}, max_windows={max_windows}"
        )
    window = max(1, round(window_s * fs_hz))
    if n_samples < round(min_s * fs_hz) or n_samples <= 0:
        raise ValueError(
            f"record too short: {n_samples / fs_hz:.2f} s, the minimum is {min_s:g} s"
        )
    if n_samples < window:
        return WindowPlan(starts=[0], window=window, pad=window - n_samples)
    count = min(max_windows, n_samples // window)
    if count == 1:
        return WindowPlan(starts=[0], window=window, pad=0)
    # Floor division keeps neighbours at least one window apart: the spacing
    # (n_samples - window) / (count - 1) is >= window because count <= n_samples // window.
    span = n_samples - window
    starts = [i * span // (count - 1) for i in range(count)]
    return WindowPlan(starts=starts, window=window, pad=0)
