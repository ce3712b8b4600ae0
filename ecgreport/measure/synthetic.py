"""Synthetic 12-lead ECGs with exactly known intervals and axes, for tests and doctests.

Unlike ``scripts/make_sample_ecgs.py`` (Gaussian waves that look like a real ECG but have no
sharp onset), every wave here is a raised-cosine pulse with compact support, so its onset
and offset are defined exactly: P from ``qrs_on - pr_s`` for ``p_s``; Q, R, S within
``[qrs_on, qrs_on + qrs_s]``; T ending at ``qrs_on + qt_s``. The heart is a dipole with a
frontal-plane direction per wave (degrees, 0 = lead I, +90 = aVF) and a small anterior
component; the limb leads follow Einthoven and Goldberger exactly, chest leads are
projections on the horizontal plane.
"""

from __future__ import annotations

import math

import numpy as np

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_CHEST_DEG = (115, 95, 75, 55, 30, 0)  # V1..V6 directions in the horizontal plane (0 = left)


def _pulse(t: np.ndarray, start: float, width: float, skew: float = 1.0) -> np.ndarray:
    """Raised cosine on ``[start, start + width]``, 0 outside; ``skew`` > 1 puts the peak late."""
    u = np.clip((t - start) / width, 0.0, 1.0)
    if skew != 1.0:
        u = u ** (1.0 / skew)
    out = 0.5 - 0.5 * np.cos(2 * np.pi * u)
    out[(t <= start) | (t >= start + width)] = 0.0
    return out


def synthetic_ecg(heart_rate: float = 70, fs_hz: float = 500, duration_s: float = 10,
                  pr_s: float = 0.16, p_s: float = 0.10, qrs_s: float = 0.09,
                  qt_s: float = 0.40, qrs_axis_deg: float = 60, t_axis_deg: float = 45,
                  p_axis_deg: float = 55, af: bool = False, noise_mv: float = 0.01,
                  seed: int = 0, t_mv: float = 0.35, ta_mv: float = 0.0,
                  st_mv: float = 0.0) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(12, duration_s * fs_hz)`` mV and the lead names. ``af``: no P waves, random RR
    (+-25 %) and 6 Hz fibrillatory waves of 0.05 mV. QRS onset of the first beat at 0.6 s.
    ``t_mv``: the T wave's dipole amplitude; ``ta_mv``: an atrial repolarization (Ta) wave,
    opposite to P, from P's end to 60 ms past QRS onset, that depresses the PR segment
    below the TP segment (``ta_mv`` > 0 gives its depth). ``st_mv``: an upsloping ST segment
    (early repolarization), a straight rise from QRS end to ``st_mv`` at T's start along the
    T axis, that returns to baseline at T's end.

    >>> sig, names = synthetic_ecg(fs_hz=100)
    >>> sig.shape, names[5]
    ((12, 1000), 'aVF')
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs_hz))
    t = np.arange(n) / fs_hz
    rr = 60.0 / heart_rate
    onsets, now = [], 0.6
    while now < duration_s + rr:
        onsets.append(now)
        now += rr * (1 + (rng.uniform(-0.25, 0.25) if af else 0.0))
    frontal = np.zeros((2, n))  # x (lead I direction), y (aVF direction)
    z = np.zeros(n)  # anterior (towards V1-V2)

    def add(shape: np.ndarray, amp: float, deg: float, anterior: float) -> None:
        frontal[0] += amp * math.cos(math.radians(deg)) * shape
        frontal[1] += amp * math.sin(math.radians(deg)) * shape
        z[:] += amp * anterior * shape

    for q0 in onsets:
        if not af:
            add(_pulse(t, q0 - pr_s, p_s), 0.15, p_axis_deg, 0.2)
            if ta_mv:
                ta_start = q0 - pr_s + p_s
                add(-_pulse(t, ta_start, q0 + 0.06 - ta_start), ta_mv, p_axis_deg, 0.2)
        add(-_pulse(t, q0, 0.25 * qrs_s), 0.15, qrs_axis_deg, -0.8)         # septal q
        add(_pulse(t, q0 + 0.15 * qrs_s, 0.55 * qrs_s), 1.4, qrs_axis_deg, -0.3)  # R
        add(-_pulse(t, q0 + 0.6 * qrs_s, 0.4 * qrs_s), 0.35, qrs_axis_deg, 1.5)   # S
        t_start = q0 + qrs_s + 0.06
        add(_pulse(t, t_start, q0 + qt_s - t_start, skew=1.6), t_mv, t_axis_deg, -0.3)
        if st_mv:
            ramp = np.interp(t, [q0 + qrs_s, t_start, q0 + qt_s], [0.0, 1.0, 0.0], 0.0, 0.0)
            add(ramp, st_mv, t_axis_deg, -0.3)
    if af:
        for k in range(2):
            phase = rng.uniform(0, 2 * np.pi)
            freq = rng.uniform(5, 7)
            f_wave = 0.05 * np.sin(2 * np.pi * freq * t + phase + 0.3 * np.sin(0.7 * t))
            frontal[k] += f_wave
    x, y = frontal
    lead_i = x
    lead_ii = 0.5 * x + (math.sqrt(3) / 2) * y
    chest = [x * math.cos(math.radians(d)) + z * math.sin(math.radians(d)) for d in _CHEST_DEG]
    noise = rng.normal(0.0, noise_mv, size=(8, n)) if noise_mv > 0 else np.zeros((8, n))
    lead_i, lead_ii = lead_i + noise[0], lead_ii + noise[1]
    limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2,
            lead_ii - lead_i / 2]
    chest = [c + e for c, e in zip(chest, noise[2:])]
    return np.stack(limb + chest), LEADS
