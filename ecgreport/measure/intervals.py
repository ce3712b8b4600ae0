"""Global ECG measurements from a median beat: rate, RR regularity, PR, P, QRS, QT, QTc, axes.

numpy only (no torch, no scipy), on the record's own sampling rate and mV signal. The method is
the one interpretive electrocardiographs use, cut to what fits in about 1 ms per 10 s
12-lead record at 100 Hz:

1. **Beats.** R peaks from one combined lead: the sum over the usable leads of the squared
   change over 10 ms (slope energy: QRS slopes are steep in some lead, T and P slopes are
   not; over 10 ms rather than one sample, so that a pacing spike does not outweigh the
   unpaced beats), smoothed over 40 ms; peaks above a quarter of its 98th percentile, at
   least 250 ms apart, then peaks below 40 % of the median peak dropped (tall T waves); each
   placed on the one-sample slope energy's peak within 20 ms (a sharper fiducial for the
   median beat). At 100 Hz 10 ms is one sample, and nothing changes.
2. **Rate and regularity.** Mean RR over all detected beats; the rhythm is irregular when
   more than a third of successive RR differences exceed 12 % of the mean RR (atrial
   fibrillation's RR is random beat to beat; sinus arrhythmia changes slowly).
3. **Median beat per lead, of the dominant unpaced morphology.** Epochs from 0.5 s before
   to 0.7 s after each R peak (whole epochs only), each lead's epoch minus its own mean
   (removes baseline wander between beats). At 250 Hz and above (at 100 Hz a spike leaves
   no sharp trace, and all beats are used), beats with a pacemaker
   spike (a one-sample second difference far above the QRS's slope) are set aside; with
   fewer than three unpaced beats the intervals are None ("paced rhythm"). The beats whose
   QRS correlates with the most typical beat's (0.8, all leads, best shift within 10 ms)
   form the dominant morphology, as in interpretive electrocardiographs: ectopic and paced
   beats do not enter the median over beats, ``(n_leads, n_window)``. Rate and regularity
   still count every beat.
4. **Global delineation on the median beats**, as the standard defines global boundaries
   (one onset and offset for all leads). At 250 Hz and above a 6 ms running median first
   removes pacemaker spikes. The spatial velocity ``A(t)`` (root sum of squared slopes over
   the leads) marks the QRS: onset and offset where ``A`` falls below a fraction of its QRS
   peak and stays below for 12 ms, searched outward from the QRS's first and last steep
   parts (so a notched, wide QRS is not cut at its notch). The QRS also ends earlier, at
   the knee where ``A``, below 8 % of its peak, stops falling (less than 2 % of the peak
   over 10 ms), stays below 8 % and points elsewhere than the QRS's last steep part
   (cosine < 0.5), at 250 Hz and above: a sloping ST segment kept ``A`` above the 5 %
   threshold for tens of ms (LUDB 1-99 QRS SD 11.8 -> 9.8 ms), while a slurred terminal S
   (bundle branch block) keeps the QRS's direction. The spatial magnitude ``M(t)``
   (root sum of squares of the baseline-corrected median beats, baseline = the PR segment
   just before QRS onset) marks P and T: T peak = the largest ``M`` within 0.1 s + RR/2 of
   QRS onset, T end by the tangent method (steepest descent of ``M`` between the T peak and
   where it has fallen by two thirds, extended to ``M``'s floor, never past where ``M`` is
   within 10 % of it), plus a fixed 25 ms (the method's bias on LUDB 1-99). The floor is
   ``M``'s minimum after the T peak only up to where ``M`` rises again (by a quarter of
   the T's height): further on lie U, the next P wave and the next PR segment, and a floor
   found there sent the tangent down the next P wave (a QT of 655 ms for 360). P peak = the
   largest ``M`` between the previous T end and the QRS, P onset/offset where ``M`` falls
   below 15 % of the P peak above its floor. A P wave must be present in the single beats
   too (their P segments correlate with the median's), else PR is None: atrial
   fibrillation's waves do not repeat. Crossings are interpolated between samples, so
   100 Hz records are not rounded to 10 ms.
5. **Frontal axes** from the net areas of P, QRS and T (onset to offset on the median beats)
   in leads I and aVF (or II: the frontal components are ``x = I``,
   ``y = (2 II - I) / sqrt(3) = 2 aVF / sqrt(3)``), as ``atan2(y, x)`` in degrees, -180..180.

The thresholds (``PARAMS``) were set on LUDB records 1-99 (cardiologists' delineation,
Kalyakulina et al. 2020) and, for the QRS offset, on PTB-XL fold 9 (Wagner et al. 2020:
bundle branch blocks); ``scripts/validate_measurements.py`` reports LUDB records 101-199
separately as the held-out half and PTB-XL fold 10 as the test fold (docs/measurements.md).

Every value that cannot be measured is None with a reason, never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MEASUREMENT_KEYS: tuple[str, ...] = (
    "heart_rate_bpm", "rr_ms", "rr_irregular", "pr_ms", "p_ms", "qrs_ms", "qt_ms",
    "qtc_bazett_ms", "qtc_fridericia_ms", "p_axis_deg", "qrs_axis_deg", "t_axis_deg",
)


@dataclass(frozen=True)
class Params:
    """Delineation thresholds (fractions of a wave's peak; times in seconds)."""

    qrs_on_frac: float = 0.07   # A(t) below this fraction of the QRS peak slope: QRS onset
    qrs_off_frac: float = 0.05  # ... QRS offset (low: the slurred terminal S of RBBB)
    steep_frac: float = 0.3     # the QRS's steep parts: slope above this fraction of its peak
    p_frac: float = 0.15        # M(t) above its floor by less than this fraction of P: P bounds
    t_end_shift_s: float = 0.025  # added to the tangent-method T end (its bias on LUDB 1-99)
    knee_hi: float = 0.08       # QRS offset at the knee of A below this fraction (0: off)
    knee_drop: float = 0.02     # ... where A falls by less than this fraction over 10 ms
    knee_cos: float = 0.5       # ... and A's direction there differs from the QRS's end
    hold_s: float = 0.012       # a boundary needs A below threshold for this long
    min_p_mv: float = 0.025     # a median P below this (spatial magnitude) is no P wave
    min_p_corr: float = 0.3     # beats' P segments must correlate with the median this well
    min_t_mv: float = 0.1       # a median T below this is too flat to end (flat T)
    despike_s: float = 0.006    # running median this long (>= 3 samples) removes pacing spikes
    max_noise: float = 0.5      # mean |beat - median beat| / QRS amplitude above this: noise
    min_beats: int = 3          # beats (whole epochs) needed for a median beat
    min_qrs_corr: float = 0.8   # a beat of the dominant morphology: QRS correlation with it
    spike_ratio: float = 5.5    # a pacing spike: curvature over the QRS's 10 ms slope (>= 250 Hz)


PARAMS = Params()
PRE_S, POST_S = 0.5, 0.7   # the median beat's window around the R peak
_SQRT3 = math.sqrt(3.0)


def empty_measurements(reason: str) -> dict:
    """Every key None, each with ``reason``."""
    out: dict = dict.fromkeys(MEASUREMENT_KEYS)
    out["reasons"] = dict.fromkeys(MEASUREMENT_KEYS, reason)
    return out


def _slope_energy(signal_mv: np.ndarray, fs_hz: float, lag: int) -> tuple[np.ndarray, int]:
    """Sum over leads of ``(x[t + lag] - x[t])**2``, averaged over 40 ms; and the offset to
    add to an index of it for the signal sample it stands for."""
    d = signal_mv[:, lag:] - signal_mv[:, :-lag]
    energy = np.einsum("ij,ij->j", d, d)
    width = max(1, int(round(0.04 * fs_hz)))
    shift = 0
    if width > 1:
        c = np.cumsum(np.concatenate(([0.0], energy)))
        energy = (c[width:] - c[:-width]) / width
        shift = width // 2
    return energy, shift + (lag + 1) // 2  # the difference sits at t + lag / 2


def detect_r_peaks(signal_mv: np.ndarray, fs_hz: float) -> np.ndarray:
    """R-peak sample indices from the combined slope energy of ``signal_mv``
    ``(n_leads, n_samples)`` mV (usable leads only). Returns ``(n_beats,)`` int64."""
    # Beats are found on the change over 10 ms, not from one sample to the next: at 500 Hz
    # a pacing spike (a few samples) has a one-sample slope many times a QRS's, and set the
    # threshold above the unpaced beats of a record (LUDB 95 lost its 5 unpaced beats);
    # over 10 ms it counts no more than its height. Each beat is then placed on the
    # one-sample energy's peak nearby, which is sharper (the median beat is aligned on it).
    lag = max(1, int(round(0.01 * fs_hz)))
    energy, offset = _slope_energy(signal_mv, fs_hz, lag)
    if energy.size < 3:
        return np.zeros(0, dtype=np.int64)
    k98 = int(0.98 * (energy.size - 1))
    top = float(np.partition(energy, k98)[k98])  # ~98th percentile
    if top <= 0:
        return np.zeros(0, dtype=np.int64)
    peaks = _peaks(energy, 0.25 * top, max(1, int(0.25 * fs_hz)))
    if peaks.size:
        heights = energy[peaks]
        peaks = peaks[heights >= 0.4 * _median(heights)]
    peaks = peaks + offset
    if lag > 1 and peaks.size:
        peaks = _refine(signal_mv, fs_hz, peaks)
    return peaks.astype(np.int64)


def _refine(signal_mv: np.ndarray, fs_hz: float, peaks: np.ndarray) -> np.ndarray:
    """Each of ``peaks`` moved to the largest one-sample slope energy (averaged over 40 ms,
    as in :func:`_slope_energy` with lag 1) within 20 ms; computed on those windows only."""
    reach = max(1, int(round(0.02 * fs_hz)))
    width = max(1, int(round(0.04 * fs_hz)))
    offset = width // 2 + 1
    n_raw = 2 * reach + width  # one-sample energies the 2 * reach + 1 averages need
    start = peaks - reach - offset
    idx = np.clip(start[:, None] + np.arange(n_raw + 1), 0, signal_mv.shape[1] - 1)
    d = np.diff(signal_mv[:, idx], axis=2)  # (leads, peaks, n_raw)
    raw = np.einsum("lpk,lpk->pk", d, d)
    c = np.concatenate((np.zeros((raw.shape[0], 1)), np.cumsum(raw, axis=1)), axis=1)
    smooth = c[:, width:] - c[:, :-width]  # (peaks, 2 * reach + 1), sums over 40 ms
    return start + np.argmax(smooth, axis=1) + offset


def _median(values: np.ndarray) -> float:
    """The median of a short 1-D array (np.median costs ~50x more on ~10 values)."""
    v = np.sort(values)
    n = v.size
    return float(v[n // 2]) if n % 2 else 0.5 * float(v[n // 2 - 1] + v[n // 2])


def _peaks(curve: np.ndarray, height: float, distance: int) -> np.ndarray:
    """Local maxima of ``curve`` of at least ``height``, at least ``distance`` samples
    apart (higher ones win), in order: ``scipy.signal.find_peaks(curve, height=height,
    distance=distance)`` for curves without plateaus, in numpy alone (importing
    scipy.signal costs each batch worker a second or more)."""
    inner = curve[1:-1]
    idx = np.nonzero((inner > curve[:-2]) & (inner >= curve[2:]) & (inner >= height))[0] + 1
    if idx.size <= 1:
        return idx
    keep = np.zeros(idx.size, dtype=bool)
    free = np.ones(idx.size, dtype=bool)
    for k in np.argsort(-curve[idx], kind="stable"):
        if free[k]:
            keep[k] = True
            lo = np.searchsorted(idx, idx[k] - distance + 1)
            hi = np.searchsorted(idx, idx[k] + distance)
            free[lo:hi] = False
    return idx[keep]


def _runs_below(values: np.ndarray, threshold: float, hold: int) -> np.ndarray:
    """``ok[j]``: values[j : j + hold] all below threshold (``len(values) - hold + 1`` long)."""
    below = (values < threshold).astype(np.int32)
    c = np.concatenate(([0], np.cumsum(below)))
    return (c[hold:] - c[:-hold]) == hold


def _cross_back(curve: np.ndarray, start: int, stop: int, threshold: float, hold: int) -> float | None:
    """Going back from ``start`` (exclusive) to ``stop``: the (interpolated) sample where
    ``curve`` falls below ``threshold`` and stays below for ``hold`` samples before it."""
    if start - stop < hold + 1:
        return None
    seg = curve[stop:start]
    ok = _runs_below(seg, threshold, hold)  # window [j, j+hold) below
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return None
    j = int(idx[-1]) + hold - 1 + stop  # last below-sample of the run nearest the peak
    if j + 1 < curve.size and curve[j + 1] != curve[j]:  # interpolate to the crossing
        frac = (threshold - curve[j]) / (curve[j + 1] - curve[j])
        return j + min(max(frac, 0.0), 1.0)
    return float(j)


def _cross_fwd(curve: np.ndarray, start: int, stop: int, threshold: float, hold: int) -> float | None:
    """Going forward from ``start`` to ``stop``: where ``curve`` falls below ``threshold`` for
    ``hold`` samples (interpolated between the last sample above and the first below)."""
    if stop - start < hold + 1:
        return None
    seg = curve[start:stop]
    ok = _runs_below(seg, threshold, hold)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return None
    j = int(idx[0]) + start
    if j > 0 and curve[j - 1] != curve[j]:
        frac = (curve[j - 1] - threshold) / (curve[j - 1] - curve[j])
        return j - 1 + min(max(frac, 0.0), 1.0)
    return float(j)


def _paced_beats(epochs: np.ndarray, f: int, fs_hz: float, ratio: float) -> np.ndarray:
    """``(n_beats,)`` bool: beats of ``epochs`` ``(n_leads, n_window, n_beats)`` mV (R peak at
    sample ``f``) with a pacemaker spike from 200 ms before to 100 ms after the R peak.

    A spike lasts a few ms: its second difference over one sample (spatial, all leads) is as
    large as its height, while a QRS's, even a notched one's, is a fraction of its steepest
    change over 10 ms. A beat is paced when the largest second difference exceeds ``ratio``
    times the largest 10 ms change per sample (LUDB 1-99: unpaced beats at most 4.7, the
    spikes of records with pacemakers 6 or more)."""
    lag = max(1, int(round(0.01 * fs_hz)))
    w = epochs[:, max(0, f - int(0.2 * fs_hz)):f + int(0.1 * fs_hz), :]
    c2 = w[:, 2:] - 2 * w[:, 1:-1] + w[:, :-2]
    dl = w[:, lag:] - w[:, :-lag]
    curv = np.sqrt(np.einsum("lwb,lwb->wb", c2, c2)).max(axis=0)
    steep = np.sqrt(np.einsum("lwb,lwb->wb", dl, dl)).max(axis=0) / lag
    return curv > ratio * steep


def _qrs_vectors(epochs: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``(n_leads * (hi - lo), n_beats)``: each beat's samples ``lo:hi`` of all leads as one
    unit vector, each lead's straight line through its window removed first (baseline
    wander tilts a beat's QRS and would part beats of one morphology)."""
    q = epochs[:, lo:hi, :]
    t = np.arange(hi - lo) - 0.5 * (hi - lo - 1)
    q = q - q.mean(axis=1, keepdims=True)
    q = q - t[None, :, None] * (np.einsum("lwb,w->lb", q, t) / float(t @ t))[:, None, :]
    q = q.reshape(-1, epochs.shape[2])
    return q / (np.sqrt(np.einsum("ib,ib->b", q, q)) + 1e-12)


def _dominant_beats(epochs: np.ndarray, f: int, fs_hz: float, min_corr: float,
                    candidates: np.ndarray) -> np.ndarray:
    """The beats of the dominant QRS morphology in ``epochs`` ``(n_leads, n_window,
    n_beats)`` mV (R peak at sample ``f``).

    Each beat's QRS (80 ms before to 120 ms after the R peak, all leads as one vector) is
    correlated with every other's; the beat with the most partners above ``min_corr`` is
    the template. A beat is kept when its best correlation with the template, shifted by up
    to 10 ms (R peaks jitter by a few samples at 500 Hz), reaches ``min_corr``. This is the
    dominant beat type of interpretive electrocardiographs: a median over paced and unpaced
    beats, or over sinus beats and ventricular ectopics, has neither's boundaries. The
    template is one of ``candidates`` (bool, ``(n_beats,)``: the unpaced beats), and only
    they are kept. Returns ``(n_beats,)`` bool. (Moving each beat by its best shift before
    the median made LUDB 1-99's QRS SD worse, 11.8 -> 14.7 ms, so beats stay on their R
    peaks.)"""
    reach = max(0, int(round(0.01 * fs_hz)))
    lo = max(reach, f - int(0.08 * fs_hz))
    hi = min(epochs.shape[1] - reach, f + int(0.12 * fs_hz))
    q = _qrs_vectors(epochs, lo, hi)
    corr = q.T @ q
    close = corr >= min_corr
    count = close.sum(axis=1) + 1e-3 * corr.sum(axis=1)  # ties: the most typical beat
    best = int(np.argmax(np.where(candidates, count, -np.inf)))
    keep = close[best] & candidates
    miss = np.nonzero(candidates & ~keep)[0]
    if miss.size and reach:  # only the beats that miss at zero shift are shifted
        sub = epochs[:, :, miss]
        shifted = np.max([q[:, best] @ _qrs_vectors(sub, lo + s, hi + s)
                          for s in range(-reach, reach + 1) if s], axis=0)
        keep[miss] = shifted >= min_corr
    return keep


def _frontal(leads: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """Frontal-plane components ``(x, y)`` of the median beats from the limb leads present."""
    i, ii, iii, avf = (leads.get(k) for k in ("I", "II", "III", "aVF"))
    if i is None and ii is not None and iii is not None:
        i = ii - iii
    if i is None:
        return None
    if ii is None and iii is not None:
        ii = i + iii
    if ii is not None:
        return i, (2 * ii - i) / _SQRT3
    if avf is not None:
        return i, 2 * avf / _SQRT3
    return None


def _axis(frontal, lo: float, hi: float, fs_hz: float) -> float | None:
    """Axis (degrees) of the net area of the frontal components between samples lo and hi."""
    a, b = int(math.floor(lo)), int(math.ceil(hi)) + 1
    x, y = frontal[0][a:b].sum() / fs_hz, frontal[1][a:b].sum() / fs_hz
    if math.hypot(x, y) < 1e-6:  # < 1 uV*ms*1000: no direction
        return None
    return math.degrees(math.atan2(y, x))


def measure_ecg(signal_mv: np.ndarray, fs_hz: float, lead_names, lead_mask=None,
                params: Params = PARAMS, details: bool = False) -> dict:
    """Global measurements of one ECG.

    ``signal_mv``: ``(n_leads, n_samples)`` in mV at ``fs_hz`` (the record's own rate);
    ``lead_names``: standard names (``"I"``, ``"aVF"``, ``"V1"``, ...), one per row;
    ``lead_mask``: ``(n_leads,)`` bool, False for a missing (zero-filled) lead.

    Returns a dict with exactly :data:`MEASUREMENT_KEYS` (None where not measurable:
    ms and degrees rounded to integers, ``rr_irregular`` a bool) and ``"reasons"``:
    ``{key: why it is None}`` for the None keys only. With ``details`` a ``"_fiducials"``
    entry holds the boundaries in seconds relative to the R peak and the R-peak indices.

    >>> from ecgreport.measure.synthetic import synthetic_ecg
    >>> sig, names = synthetic_ecg(heart_rate=60, fs_hz=500, pr_s=0.16, qt_s=0.40)
    >>> m = measure_ecg(sig, 500, names)
    >>> 55 <= m["heart_rate_bpm"] <= 65, m["reasons"]
    (True, {})
    """
    x = np.asarray(signal_mv, dtype=np.float64)
    names = list(lead_names)
    mask = np.ones(len(names), bool) if lead_mask is None else np.asarray(lead_mask, bool)
    if x.ndim != 2 or x.shape[0] != len(names):
        raise ValueError(f"signal_mv must be (n_leads, n_samples) with one name per lead, "
                         f"got shape {x.shape} and {len(names)} names")
    with np.errstate(invalid="ignore"):  # a NaN anywhere makes a lead's range NaN: unusable
        span = x.max(axis=1) - x.min(axis=1) if x.shape[1] else np.zeros(len(names))
    usable = mask & np.isfinite(span) & (span > 1e-3)
    if not usable.any():
        return empty_measurements("no usable leads")
    if not usable.all():
        x = x[usable]
        names = [n for n, u in zip(names, usable) if u]
    out = empty_measurements("")
    reasons = out["reasons"]

    # 1-2: beats, rate, regularity
    peaks = detect_r_peaks(x, fs_hz)
    if peaks.size < 2:
        return empty_measurements(f"too few beats ({peaks.size} QRS complexes found)")
    rr_s = np.diff(peaks) / fs_hz
    rr_mean = float(rr_s.mean())
    out["heart_rate_bpm"] = int(round(60.0 / rr_mean))
    out["rr_ms"] = int(round(1000 * rr_mean))
    if rr_s.size >= 3:
        jumps = np.abs(np.diff(rr_s)) > 0.12 * rr_mean
        out["rr_irregular"] = bool(jumps.mean() > 1 / 3)
    else:
        reasons["rr_irregular"] = f"too few beats for regularity ({peaks.size})"

    # 3: median beat
    pre, post = int(round(PRE_S * fs_hz)), int(round(POST_S * fs_hz))
    whole = peaks[(peaks - pre >= 0) & (peaks + post <= x.shape[1])]
    interval_keys = MEASUREMENT_KEYS[3:]
    if whole.size < params.min_beats:
        for key in interval_keys:
            reasons[key] = f"too few whole beats for a median beat ({whole.size})"
        return _finish(out, details, peaks, fs_hz, {})
    # (L, W, B): beats last, so that the median over beats sorts contiguous rows
    epochs = x[:, np.arange(-pre, post)[:, None] + whole[None, :]]
    epochs -= epochs.mean(axis=1, keepdims=True)
    if fs_hz >= 250:  # below, a spike of 1-2 ms leaves no sharp trace to find
        paced = _paced_beats(epochs, pre, fs_hz, params.spike_ratio)
        if whole.size - paced.sum() < params.min_beats:
            for key in interval_keys:
                reasons[key] = (f"paced rhythm (pacemaker spikes in {int(paced.sum())} of "
                                f"{whole.size} beats): intervals of paced beats not measured")
            return _finish(out, details, peaks, fs_hz, {})
        candidates = ~paced
        # the dominant morphology only where paced beats can be set aside: at 100 Hz the
        # largest group of a half-paced record can be the paced one (LUDB 1-99 resampled
        # to 100 Hz: QRS SD 16.8 -> 18.9 ms with it, QT 16.5 -> 18.0)
        dominant = _dominant_beats(epochs, pre, fs_hz, params.min_qrs_corr, candidates)
        if dominant.sum() < params.min_beats:  # no morphology dominates: all unpaced beats
            dominant = candidates
        if not dominant.all():
            epochs, whole = epochs[:, :, dominant], whole[dominant]
    # the median over beats by sorting (np.median's partition is 3x slower on ~10 beats)
    ranked = np.sort(epochs, axis=2)
    mid = whole.size // 2
    median = ranked[..., mid] if whole.size % 2 else 0.5 * (ranked[..., mid - 1] + ranked[..., mid])
    k = int(params.despike_s * fs_hz) // 2
    if k >= 1:  # pacemaker spikes (a few ms) would otherwise set the QRS's peak slope
        median = np.median(np.stack([np.roll(median, s, axis=1) for s in range(-k, k + 1)]), axis=0)
    f = pre  # the R peak's sample in the window

    # 4: QRS from the spatial velocity
    slope = np.diff(median, axis=1) * fs_hz
    velocity = np.sqrt(np.einsum("ij,ij->j", slope, slope))  # between samples: +0.5
    smooth = max(1, int(round(0.01 * fs_hz)))
    if smooth > 1:
        velocity = np.convolve(velocity, np.ones(smooth) / smooth, mode="same")
    hold = max(1, int(round(params.hold_s * fs_hz)))
    lo, hi = f - int(0.06 * fs_hz), f + int(0.06 * fs_hz)
    peak = lo + int(np.argmax(velocity[lo:hi]))
    v_peak = float(velocity[peak])
    if not v_peak > 0:
        for key in interval_keys:
            reasons[key] = "no QRS on the median beat (flat signal?)"
        return _finish(out, details, peaks, fs_hz, {})
    # A wide or notched QRS (bundle branch block) can dip below the low threshold inside:
    # search outward only from its first / last steep part (above a third of the peak slope
    # within 150 ms before / 200 ms after the peak; T and P slopes stay well below that).
    steep = np.nonzero(velocity[max(0, peak - int(0.15 * fs_hz)):peak + int(0.2 * fs_hz)]
                       > params.steep_frac * v_peak)[0] + max(0, peak - int(0.15 * fs_hz))
    first, last = int(steep[0]), int(steep[-1])
    qrs_on = _cross_back(velocity, first + 1, max(0, f - int(0.25 * fs_hz)),
                         params.qrs_on_frac * v_peak, hold)
    qrs_off = _cross_fwd(velocity, last, min(velocity.size, f + int(0.3 * fs_hz)),
                         params.qrs_off_frac * v_peak, hold)
    if qrs_on is None or qrs_off is None:
        for key in interval_keys:
            reasons[key] = "QRS boundaries not found on the median beat (noise?)"
        return _finish(out, details, peaks, fs_hz, {})
    if params.knee_hi > 0 and fs_hz >= 250:
        # a sloping ST segment (early repolarization) keeps A above the offset threshold
        # for tens of ms after the QRS has ended: the QRS also ends where A, below knee_hi
        # of its peak, stops falling (by less than knee_drop of the peak over 10 ms). Not
        # below 250 Hz: there 10 ms is one or two samples, and on PTB-XL fold 9 (100 Hz)
        # every knee tried cost bundle branch block sensitivity (0.944 -> 0.81-0.94) while
        # on LUDB 1-99 resampled to 100 Hz it changed the QRS SD by 0.1 ms
        w10 = max(1, int(round(0.01 * fs_hz)))
        seg = velocity[last:int(qrs_off) + w10 + 1]
        # below knee_hi from there on (to the threshold crossing): a slurred S can pause
        # and steepen again, an ST slope does not
        stays = np.maximum.accumulate(seg[::-1])[::-1][:-w10] < params.knee_hi * v_peak
        knee = np.nonzero(stays & (seg[:-w10] - seg[w10:] < params.knee_drop * v_peak))[0]
        if knee.size and params.knee_cos < 1:
            # ... and where A points elsewhere than the QRS's last steep part: a slurred
            # terminal S (bundle branch block) keeps the QRS's direction, ST slopes do not
            idx = last + knee
            half = max(1, w10 // 2)
            d_k = median[:, np.minimum(idx + half, median.shape[1] - 1)] - median[:, idx - half]
            d_l = median[:, last + half] - median[:, last - half]
            cos = (d_l @ d_k) / (np.linalg.norm(d_l) * np.linalg.norm(d_k, axis=0) + 1e-12)
            knee = knee[cos < params.knee_cos]
        if knee.size:
            qrs_off = min(qrs_off, float(last + knee[0]))
    qrs_on += 0.5  # velocity samples sit between signal samples
    qrs_off += 0.5

    # noise: how far single beats stray from the median beat, against the QRS amplitude
    qrs_amp = float(np.ptp(median[:, int(qrs_on):int(qrs_off) + 1], axis=1).max())
    resid = float(np.mean(np.abs(epochs - median[:, :, None])))
    if qrs_amp <= 0 or resid / qrs_amp > params.max_noise:
        for key in interval_keys:
            reasons[key] = (f"noise: beats differ from their median by {resid:.2f} mV "
                            f"against a {qrs_amp:.2f} mV QRS")
        return _finish(out, details, peaks, fs_hz, {})
    out["qrs_ms"] = int(round(1000 * (qrs_off - qrs_on) / fs_hz))

    # baseline: the PR segment just before QRS onset
    b_hi = max(1, int(qrs_on))
    b_lo = max(0, b_hi - max(2, int(round(0.02 * fs_hz))))
    centred = median - median[:, b_lo:b_hi].mean(axis=1, keepdims=True)
    magnitude = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    rr_med = _median(rr_s)
    fid = {"qrs_on": qrs_on, "qrs_off": qrs_off}

    # T: peak of the spatial magnitude after the QRS, end by the tangent method
    # T peak within 0.1 s + RR / 2 of QRS onset (0.6 s at most): later comes the next P
    t_lo = int(qrs_off + 0.06 * fs_hz)
    t_hi = min(magnitude.size - 1, f + int((rr_med - 0.05) * fs_hz), int(qrs_on + 0.7 * fs_hz))
    t_peak_hi = min(t_hi, int(qrs_on + min(0.6, 0.1 + 0.5 * rr_med) * fs_hz))
    t_end = None
    if t_peak_hi - t_lo < int(0.08 * fs_hz):
        t_reason = "no room for a T wave before the next beat"
    else:
        t_peak = t_lo + int(np.argmax(magnitude[t_lo:t_peak_hi]))
        # T's own floor: M's minimum before M rises again (into U or the next P wave) by a
        # quarter of the T's height above the lowest point so far; the minimum up to the
        # next QRS could lie in the next PR segment and stretch the search over P's descent
        after = magnitude[t_peak:t_hi + 1]
        low_so_far = np.minimum.accumulate(after)
        rising = np.nonzero(after - low_so_far > np.maximum(
            0.25 * (after[0] - low_so_far), 0.5 * params.min_t_mv))[0]
        if rising.size:
            t_hi = t_peak + int(rising[0])
        floor = float(magnitude[t_peak:t_hi + 1].min())
        if magnitude[t_peak] - floor < params.min_t_mv:
            t_reason = "T wave too flat to find its end"
        else:
            # the steepest descent of T itself: between the peak and where M first falls
            # to a third of its height (later descents belong to U or the next P wave)
            height_t = magnitude[t_peak] - floor
            low = np.nonzero(magnitude[t_peak:t_hi + 1] < floor + height_t / 3)[0]
            stop = t_peak + (int(low[0]) + 1 if low.size else t_hi - t_peak)
            d_mag = np.diff(magnitude[t_peak:stop + 1])
            if d_mag.size == 0 or d_mag.min() >= 0:
                t_reason = "T wave does not return to baseline before the next beat"
            else:
                k = int(np.argmin(d_mag))
                slope_t = float(d_mag[k])  # per sample, negative
                x0 = t_peak + k + 0.5
                y0 = 0.5 * (magnitude[t_peak + k] + magnitude[t_peak + k + 1])
                t_end = min(x0 + (floor - y0) / slope_t, float(t_hi))
                # never past where T has in fact come down to near its floor
                near = np.nonzero(magnitude[t_peak:t_hi + 1] < floor + 0.1 * height_t)[0]
                if near.size:
                    t_end = min(t_end, float(t_peak + near[0]))
                t_end += params.t_end_shift_s * fs_hz
                fid.update(t_peak=float(t_peak), t_end=t_end)
    if t_end is not None:
        qt_s = (t_end - qrs_on) / fs_hz
        out["qt_ms"] = int(round(1000 * qt_s))
        out["qtc_bazett_ms"] = int(round(1000 * qt_s / math.sqrt(rr_mean)))
        out["qtc_fridericia_ms"] = int(round(1000 * qt_s / rr_mean ** (1 / 3)))
    else:
        for key in ("qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms", "t_axis_deg"):
            reasons[key] = t_reason

    # P: peak of the spatial magnitude between the previous T end and the QRS
    p_hi = int(qrs_on - 0.02 * fs_hz)
    prev_t_end = (t_end if t_end is not None else qrs_on + 0.4 * fs_hz) - rr_med * fs_hz
    p_lo = max(1, int(max(prev_t_end, f - 0.45 * fs_hz)))
    p_on = p_off = None
    if p_hi - p_lo < int(0.06 * fs_hz):
        p_reason = "no room for a P wave between the previous T wave and the QRS"
    else:
        p_peak = p_lo + int(np.argmax(magnitude[p_lo:p_hi]))
        floor = float(magnitude[p_lo:p_peak + 1].min())
        height = float(magnitude[p_peak]) - floor
        # consistency: each beat's P segment against the median's (fibrillation waves do
        # not repeat, sinus P waves do)
        seg = epochs[:, p_lo:p_hi] - epochs[:, p_lo:p_hi].mean(axis=1, keepdims=True)
        ref = median[:, p_lo:p_hi] - median[:, p_lo:p_hi].mean(axis=1, keepdims=True)
        num = np.einsum("lwb,lw->b", seg, ref)
        den = np.sqrt(np.einsum("lwb,lwb->b", seg, seg) * float((ref * ref).sum())) + 1e-12
        corr = _median(num / den)
        irregular = out["rr_irregular"] is True
        if height < params.min_p_mv or corr < params.min_p_corr:
            p_reason = ("no consistent P wave (irregular rhythm: atrial fibrillation or flutter?)"
                        if irregular else "no consistent P wave found before the QRS")
        else:
            thr = floor + params.p_frac * height
            p_on = _cross_back(magnitude, p_peak, max(0, p_lo - int(0.1 * fs_hz)), thr, 1)
            p_off = _cross_fwd(magnitude, p_peak, int(qrs_on) + 1, thr, 1)
            p_reason = "P wave boundaries not found"
    if p_on is not None and p_off is not None:
        p_off = min(p_off, qrs_on)
        out["pr_ms"] = int(round(1000 * (qrs_on - p_on) / fs_hz))
        out["p_ms"] = int(round(1000 * (p_off - p_on) / fs_hz))
        fid.update(p_on=p_on, p_off=p_off)
    else:
        for key in ("pr_ms", "p_ms", "p_axis_deg"):
            reasons[key] = p_reason

    # 5: frontal axes
    frontal = _frontal(dict(zip(names, centred)))
    if frontal is None:
        for key in ("p_axis_deg", "qrs_axis_deg", "t_axis_deg"):
            reasons.setdefault(key, "")
            reasons[key] = reasons[key] or "needs lead I and lead II, III or aVF"
    else:
        for key, bounds in (("p_axis_deg", (p_on, p_off)), ("qrs_axis_deg", (qrs_on, qrs_off)),
                            ("t_axis_deg", (qrs_off, t_end))):
            if bounds[0] is None or bounds[1] is None:
                continue
            angle = _axis(frontal, bounds[0], bounds[1], fs_hz)
            if angle is None:
                reasons[key] = "no net frontal-plane deflection"
            else:
                out[key] = int(round(angle))
    return _finish(out, details, peaks, fs_hz, {k: (v - f) / fs_hz for k, v in fid.items()})


def _finish(out: dict, details: bool, peaks: np.ndarray, fs_hz: float, fid: dict) -> dict:
    out["reasons"] = {k: r for k, r in out["reasons"].items() if out[k] is None and r}
    for key in MEASUREMENT_KEYS:  # every None has a reason
        if out[key] is None and key not in out["reasons"]:
            out["reasons"][key] = "not measurable"
    if details:
        out["_fiducials"] = {"r_peaks": peaks, "fs_hz": fs_hz, **fid}
    return out
