"""ECG augmentations for training: what changes between recordings of the same heart.

Each training copy of a record is perturbed in ways that do not change what a report says
about it, so the encoder learns to ignore them:

- amplitude: the whole record scaled by a log-normal factor (electrode contact, body build,
  device gain; sigma 0.15, about +-15%) and each lead by a smaller one (sigma 0.05);
- baseline wander: a slow sinusoid (0.05-0.5 Hz, up to 0.2 mV, random phase per lead), as
  breathing and movement make; the model's input keeps wander (only each lead's median is
  removed, see `ecgreport.signal.preprocess.normalise`), so it must learn to ignore it;
- noise: white noise of 0-0.03 mV standard deviation (static noise, muscle tremor);
- time shift: the 10 s window rolled by up to 0.5 s, so no finding is tied to a position;
- lead drop-out (`TrainConfig.lead_dropout`, applied by the batch loader): one lead zeroed, as
  a missing lead is zero-filled at inference.

Inputs and outputs are the model's normalised windows (B, 12, T) in mV; the result is
clipped to the same range as `normalise` clips real input. Deterministic for a given rng.
"""

from __future__ import annotations

import numpy as np

from ecgreport.signal.preprocess import CLIP_MV

SCALE_SIGMA = 0.15
LEAD_SCALE_SIGMA = 0.05
WANDER_HZ = (0.05, 0.5)
WANDER_MAX_MV = 0.2
NOISE_MAX_MV = 0.03
SHIFT_MAX_S = 0.5


def augment(x: np.ndarray, rng: np.random.Generator, fs_hz: float, p: float = 0.5) -> np.ndarray:
    """A perturbed copy of the batch `x` (B, leads, T), float32 mV.

    Each of the four perturbations is applied to each record with probability `p`
    (independently), so a share of (1 - p)^4 of the records passes unchanged.
    """
    b, leads, t = x.shape
    out = x.astype(np.float32, copy=True)
    on = rng.random((4, b)) < p
    # amplitude: one factor per record and a small one per lead
    scale = np.exp(rng.normal(0.0, SCALE_SIGMA, (b, 1, 1)) + rng.normal(0.0, LEAD_SCALE_SIGMA, (b, leads, 1)))
    out *= np.where(on[0][:, None, None], scale, 1.0).astype(np.float32)
    # baseline wander: per record a frequency, per lead an amplitude and a phase
    time_s = np.arange(t, dtype=np.float32) / fs_hz
    freq = rng.uniform(*WANDER_HZ, (b, 1, 1))
    amp = rng.uniform(0.0, WANDER_MAX_MV, (b, leads, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (b, leads, 1))
    wander = (amp * np.sin(2 * np.pi * freq * time_s + phase)).astype(np.float32)
    out += wander * on[1][:, None, None]
    # white noise
    sd = rng.uniform(0.0, NOISE_MAX_MV, (b, 1, 1)).astype(np.float32)
    out += (rng.standard_normal((b, leads, t), dtype=np.float32) * sd) * on[2][:, None, None]
    # time shift (circular: the window is a sample of a longer, repeating rhythm)
    max_shift = int(round(SHIFT_MAX_S * fs_hz))
    if max_shift:
        shifts = rng.integers(-max_shift, max_shift + 1, b)
        for i in np.nonzero(on[3])[0]:
            out[i] = np.roll(out[i], int(shifts[i]), axis=-1)
    np.clip(out, -CLIP_MV, CLIP_MV, out=out)
    return out
