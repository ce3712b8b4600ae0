"""Signal checks before interpretation: lead consistency, polarity, amplitude and quality.

What an interpretive ECG program checks before it interprets (numpy only; thresholds
chosen on PTB-XL folds 1-9 and validated on fold 10, see docs/signal-checks.md and
scripts/signal_checks_ptbxl.py):

* **Limb-lead consistency.** The six limb leads hold two independent signals:
  ``III = II - I`` and ``aVR + aVL + aVF = 0`` (Einthoven, Goldberger; with the other
  Goldberger identities ``aVR = -(I+II)/2``, ``aVL = I - II/2``, ``aVF = II - I/2``, which
  also catch an aVL/aVF mix-up that leaves the sum at zero). A residual larger than
  ``CONSISTENCY_TOL`` of the limb-lead amplitude means the leads were not recorded as
  labelled; the swap or inversion of channels that restores the identities is named.
  An electrode reversal (e.g. left and right arm) keeps the identities and shows in
  the polarity check instead.
* **Polarity.** aVR looks at the heart from the right shoulder: its P-QRS is negative in
  almost every ECG. An upright aVR with a negative lead I means the arm electrodes are
  reversed (or dextrocardia); with the left-sided chest leads (or lead II) negative too,
  the whole record is inverted.
* **Amplitude.** A typical QRS of tens of mV (or of a few hundredths of one) is not a
  human ECG in mV: wrong units or gain.
* **Quality, per lead.** Baseline drift (the range of 1 s medians), static noise (the
  noise floor: median second difference), burst noise (a 1 s stretch with a noise floor
  far above the lead's own), lead off (1 s stretches without any activity), saturation
  (samples stuck at the lead's extreme value: the converter's limit).
* **Verdict** for the record: ``good`` (no finding), ``acceptable`` (findings a reader
  should know of), ``unreadable`` (a reader should not interpret it: implausible
  amplitude, or a third of the recorded leads off, saturated or swamped by noise).

Cost: a few vectorised numpy reductions over the record at ~100 Hz (a 500 Hz record is
averaged down in blocks of 5 samples first; saturation is checked on the samples as
stored); docs/signal-checks.md gives the measured milliseconds per record.

>>> import numpy as np
>>> t = np.arange(1000) / 100
>>> beat = np.exp(-((t % 1) - 0.5) ** 2 / 2e-4)           # a 1 mV spike a second
>>> beat += np.random.default_rng(0).normal(0, 0.005, t.shape)  # 5 uV of noise
>>> leads = np.array([1.0, 1.5, 0.5, -1.25, 0.25, 1.0])    # limb leads of one dipole
>>> sig = np.zeros((12, 1000), np.float32); sig[:6] = leads[:, None] * beat
>>> sig[6:] = beat; mask = np.ones(12, bool)
>>> check_signal(sig, 100.0, mask).verdict
'good'
>>> sig[[0, 1]] = sig[[1, 0]]                              # I and II swapped
>>> check_signal(sig, 100.0, mask).findings[0].message  # doctest: +ELLIPSIS
'limb leads inconsistent (III = II - I not met, ...): leads I and II look swapped (mislabelled channels)'
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ecgreport.leads import STANDARD_LEADS

GOOD, ACCEPTABLE, UNREADABLE = "good", "acceptable", "unreadable"
VERDICTS = (GOOD, ACCEPTABLE, UNREADABLE)

# Thresholds (mV unless stated), chosen on PTB-XL folds 1-9 (scripts/signal_checks_ptbxl.py).
CONSISTENCY_TOL = 0.05   # residual RMS / limb-lead RMS above which an identity fails
DRIFT_MV = 1.75          # range of the 1 s medians of a lead
NOISE_MV = 0.045         # noise floor: median |second difference| at ~100 Hz
NOISE_SEVERE_MV = 0.3    # a noise floor that swamps the ECG (~0.18 mV RMS white noise)
BURST_RATIO = 2.5        # a 1 s noise floor this many times the lead's own (at least
NOISE_FLOOR_MIN_MV = 0.01  # this much: a quiet lead's floor is quantisation, not noise)
FLAT_BLOCK_MV = 0.02     # peak-to-peak of a 1 s block without any activity
LEAD_OFF_FRACTION = 0.3  # share of 1 s blocks without activity for "lead off"
SATURATION_FRACTION = 0.01  # share of samples stuck at the lead's max or min
POLARITY = 0.2           # |(R - S) / (R + S)| of a lead's typical beat for a clear sign
AMPLITUDE_HIGH_MV = 5.0  # median over leads of the typical beat's peak-to-peak
AMPLITUDE_LOW_MV = 0.2   # the largest lead's typical beat below this
UNREADABLE_SHARE = 1 / 3  # share of recorded leads off, saturated or swamped

@dataclass(frozen=True)
class Finding:
    """One finding: ``check`` a short name (e.g. ``"baseline_drift"``), ``message`` one
    sentence for a reader, ``leads`` the leads concerned (empty: the record as a whole)."""

    check: str
    message: str
    leads: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"check": self.check, "leads": list(self.leads), "message": self.message}


@dataclass
class SignalChecks:
    """The checks of one record (or window): ``verdict`` (one of VERDICTS) and the
    ``findings`` in a fixed order of checks."""

    verdict: str = GOOD
    findings: list[Finding] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return list(dict.fromkeys(f.check for f in self.findings))

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings]

    def add(self, check: str, message: str, leads: tuple[str, ...] | list[str] = ()) -> None:
        self.findings.append(Finding(check, message, tuple(leads)))

    def merge(self, other: "SignalChecks", where: str = "") -> None:
        """Add another window's findings (``where`` prefixes their messages, e.g.
        ``"at 3600 s: "``); the verdict becomes the worse of the two."""
        for f in other.findings:
            f = Finding(f.check, f"{where}{f.message}", f.leads)
            if f not in self.findings:
                self.findings.append(f)
        self.verdict = max(self.verdict, other.verdict, key=VERDICTS.index)


@dataclass
class _Features:
    """Per-lead features of the leads checked, ``(n,)`` arrays, in mV unless stated."""

    leads: list[str]
    drift: np.ndarray
    noise: np.ndarray
    burst: np.ndarray       # highest 1 s noise floor
    flat_share: np.ndarray  # share of 1 s blocks without activity
    saturated: np.ndarray   # share of samples at the lead's max or min, the larger
    r_amp: np.ndarray       # typical beat: highest point above the block median
    s_amp: np.ndarray       # typical beat: lowest point below the block median
    y: np.ndarray           # (n, m) the leads at ~100 Hz (block means), float32

    @property
    def burst_ratio(self) -> np.ndarray:
        return self.burst / np.maximum(self.noise, NOISE_FLOOR_MIN_MV)

    @property
    def amplitude(self) -> np.ndarray:
        return self.r_amp + self.s_amp

    @property
    def polarity(self) -> np.ndarray:
        return (self.r_amp - self.s_amp) / np.maximum(self.r_amp + self.s_amp, 1e-6)


def lead_features(signal_mv: np.ndarray, fs_hz: float, rows: np.ndarray) -> _Features:
    """Quality features of ``signal_mv[rows]`` (``(12, n_samples)`` mV at ``fs_hz``)."""
    x = np.asarray(signal_mv, dtype=np.float32)[rows]
    n_leads, n = x.shape
    # Saturation on the samples as stored: a converter's limit is one exact value, held
    # for consecutive samples (a sharp R peak touches its maximum once). The first and
    # last half second are left out: recorders often hold the last value at the end.
    edge = min(int(fs_hz / 2), n // 10)
    inner = x[:, edge: n - edge]
    hi, lo = inner.max(axis=1, keepdims=True), inner.min(axis=1, keepdims=True)
    held = inner[:, 1:] == inner[:, :-1]
    stuck = np.maximum((held & (inner[:, 1:] == hi)).sum(axis=1),
                       (held & (inner[:, 1:] == lo)).sum(axis=1))
    saturated = np.where((hi - lo)[:, 0] > FLAT_BLOCK_MV, stuck / max(inner.shape[1], 1), 0.0)
    # Everything else at ~100 Hz, whatever the record's rate: block means of `step`
    # samples are a (crude) anti-aliasing filter, enough for noise and baseline.
    step = max(1, int(fs_hz // 100))
    y = x
    if step > 1:  # a sum of strided views: ~3x faster than .mean over a short last axis
        m = n // step
        y = sum(x[:, k: k + m * step: step] for k in range(step)) / step
    block = max(3, int(round(fs_hz / step)))  # 1 s blocks
    nb = max(1, y.shape[1] // block)
    block = min(block, y.shape[1])
    # Medians by sorting: numpy's SIMD sort of short rows is ~5x faster than np.median.
    yb = np.sort(y[:, : nb * block].reshape(n_leads, nb, block), axis=2)
    med, bmax, bmin = yb[:, :, block // 2], yb[:, :, -1], yb[:, :, 0]   # (L, nb) each
    d2 = np.empty_like(y[:, : nb * block])
    d2[:, 1:-1] = np.abs(y[:, 2: nb * block] - 2 * y[:, 1: nb * block - 1] + y[:, : nb * block - 2])
    d2[:, 0], d2[:, -1] = d2[:, 1], d2[:, -2]
    floor = np.sort(d2.reshape(n_leads, nb, block), axis=2)[:, :, block // 2]  # noise floor
    per_block = np.sort(np.stack([floor, bmax - med, med - bmin]), axis=2)[:, :, nb // 2]
    return _Features(
        leads=[STANDARD_LEADS[r] for r in np.asarray(rows).tolist()],
        drift=med.max(axis=1) - med.min(axis=1),
        noise=per_block[0],
        burst=floor.max(axis=1),
        flat_share=((bmax - bmin) < FLAT_BLOCK_MV).mean(axis=1),
        saturated=saturated,
        r_amp=per_block[1],
        s_amp=per_block[2],
        y=y,
    )


def check_signal(signal_mv: np.ndarray, fs_hz: float, lead_mask: np.ndarray,
                 derived: list[str] | tuple[str, ...] = ()) -> SignalChecks:
    """Run every check on one record (or window).

    ``signal_mv``: ``(12, n_samples)`` mV at ``fs_hz``, rows in ``STANDARD_LEADS`` order;
    ``lead_mask``: ``(12,)`` bool, usable leads; ``derived``: leads computed from others
    (:mod:`ecgreport.signal.limb`), which are skipped by the quality and consistency
    checks (they hold no signal of their own). Returns :class:`SignalChecks`.
    """
    result = SignalChecks()
    recorded = [k for k in range(12) if lead_mask[k] and STANDARD_LEADS[k] not in derived]
    if not recorded:
        return result
    feats = lead_features(signal_mv, fs_hz, np.array(recorded))
    by_lead = {lead: i for i, lead in enumerate(feats.leads)}
    _check_amplitude(feats, result)
    if result.findings:  # wrong units or gain: every other threshold (in mV) is moot
        result.verdict = UNREADABLE
        return result
    _check_consistency(feats, by_lead, result)
    _check_polarity(feats, by_lead, result)
    bad = _check_quality(feats, result)
    if len(bad) >= max(1, UNREADABLE_SHARE * len(recorded)):
        result.verdict = UNREADABLE
    elif result.codes:
        result.verdict = ACCEPTABLE
    return result


def _check_amplitude(feats: _Features, result: SignalChecks) -> None:
    amp = feats.amplitude
    typical, largest = float(np.median(amp)), float(amp.max())
    if typical > AMPLITUDE_HIGH_MV:
        result.add("amplitude_implausible",
                   f"implausible amplitude: typical QRS {typical:.0f} mV peak to peak "
                   "(a human ECG has about 1 mV): wrong units or gain")
    elif largest < AMPLITUDE_LOW_MV:
        result.add("amplitude_implausible",
                   f"implausible amplitude: largest QRS {largest * 1000:.0f} uV peak to peak "
                   "in any lead: wrong units or gain, or no ECG")


# Relations among the limb leads, as coefficient rows over (I, II, III, aVR, aVL, aVF).
_RELATIONS = {
    "III = II - I": (np.array([1, -1, 1, 0, 0, 0.0]), {0, 1, 2}),
    "aVR + aVL + aVF = 0": (np.array([0, 0, 0, 1, 1, 1.0]), {3, 4, 5}),
    "aVR = -(I + II)/2": (np.array([0.5, 0.5, 0, 1, 0, 0]), {0, 1, 3}),
    "aVL = I - II/2": (np.array([-1, 0.5, 0, 0, 1, 0]), {0, 1, 4}),
    "aVF = II - I/2": (np.array([0.5, -1, 0, 0, 0, 1]), {0, 1, 5}),
}


_COEF = np.stack([coef for coef, _ in _RELATIONS.values()])  # (5, 6)


def _residuals(limb: np.ndarray, present: set[int], scale: float) -> dict[str, float]:
    """Relative RMS residual of each relation whose leads are all present; ``limb``:
    ``(6, n)`` limb leads, each with its mean removed (zeros where absent)."""
    r = _COEF.astype(limb.dtype) @ limb                 # (5, n) in one product
    rms = np.sqrt(np.einsum("ij,ij->i", r, r) / r.shape[1]) / scale
    return {name: float(v) for (name, (_, needs)), v in zip(_RELATIONS.items(), rms.tolist())
            if needs <= present}


def _check_consistency(feats: _Features, by_lead: dict[str, int], result: SignalChecks) -> None:
    # On the ~100 Hz block means: the identities are linear, so they hold there too.
    present = {k for k, lead in enumerate(STANDARD_LEADS[:6]) if lead in by_lead}
    if len(present) < 3:  # no relation has fewer than three leads
        return
    if len(present) == 6:  # the usual case: the first six rows, in order
        limb = feats.y[:6]
    else:
        limb = np.zeros((6, feats.y.shape[1]), np.float32)
        for k in present:
            limb[k] = feats.y[by_lead[STANDARD_LEADS[k]]]
    limb = limb - limb.mean(axis=1, keepdims=True)
    power = np.einsum("ij,ij->i", limb, limb) / limb.shape[1]
    scale = max(float(np.sqrt(power[sorted(present)]).mean()), 1e-3)
    residuals = _residuals(limb, present, scale)
    failed = [name for name, value in residuals.items() if value > CONSISTENCY_TOL]
    if not failed:
        return
    worst = max(residuals[name] for name in failed)
    cause = _likely_cause(limb, present, scale)
    shown = [n for n in failed if n in ("III = II - I", "aVR + aVL + aVF = 0")] or failed
    result.add("limb_leads_inconsistent",
               f"limb leads inconsistent ({'; '.join(shown)} not met, residual "
               f"{worst:.0%} of the limb-lead amplitude): {cause}",
               [STANDARD_LEADS[k] for k in sorted(present)])


def _likely_cause(limb: np.ndarray, present: set[int], scale: float) -> str:
    """The one swap of two limb channels, or inversion of one, that restores every
    relation; else a general statement."""
    names = STANDARD_LEADS[:6]
    candidates = []
    limb = limb.astype(np.float64)
    for a, b in itertools.combinations(sorted(present), 2):
        fixed = limb.copy()
        fixed[[a, b]] = fixed[[b, a]]
        candidates.append((f"leads {names[a]} and {names[b]} look swapped (mislabelled "
                           "channels)", fixed))
    for a in sorted(present):
        fixed = limb.copy()
        fixed[a] = -fixed[a]
        candidates.append((f"lead {names[a]} looks inverted", fixed))
    fits = []
    for text, fixed in candidates:
        res = _residuals(fixed, present, scale)
        if res and max(res.values()) <= CONSISTENCY_TOL:
            fits.append(text)
    if len(fits) == 1:
        return fits[0]
    return ("a limb lead is mislabelled, reversed or recorded separately "
            "(no single swap or inversion explains it)")


def _check_polarity(feats: _Features, by_lead: dict[str, int], result: SignalChecks) -> None:
    pol = feats.polarity

    def sign(lead: str) -> int:
        if lead not in by_lead:
            return 0
        p = pol[by_lead[lead]]
        return 1 if p > POLARITY else -1 if p < -POLARITY else 0

    if sign("aVR") != 1 or sign("I") != -1:
        return
    chest = [sign(v) for v in ("V5", "V6") if v in by_lead]
    left_negative = (all(s == -1 for s in chest) if chest else sign("II") == -1)
    if left_negative:
        result.add("polarity_inverted",
                   "implausible polarity: aVR upright and I, "
                   + ("V5, V6" if chest else "II") + " negative: the whole record looks "
                   "inverted (sign of the signal)", ["aVR", "I"])
    else:
        result.add("arm_leads_reversed",
                   "implausible polarity: aVR upright and lead I negative: left and right "
                   "arm electrodes probably reversed (or dextrocardia, or an extreme "
                   "right axis)", ["aVR", "I"])


def _check_quality(feats: _Features, result: SignalChecks) -> list[str]:
    """Per-lead findings; returns the leads that cannot be read (off, saturated, swamped)."""
    findings = {
        "lead_off": feats.flat_share >= LEAD_OFF_FRACTION,
        "saturation": feats.saturated >= SATURATION_FRACTION,
        "static_noise": feats.noise >= NOISE_MV,
        "burst_noise": feats.burst_ratio >= BURST_RATIO,
        "baseline_drift": feats.drift >= DRIFT_MV,
    }
    severe = feats.noise >= NOISE_SEVERE_MV
    texts = {
        "lead_off": "lead off or disconnected (no activity for {} of the record)",
        "saturation": "saturated (stuck at the converter's limit)",
        "static_noise": "static noise",
        "burst_noise": "burst noise",
        "baseline_drift": "baseline drift",
    }
    for code, hit in findings.items():
        leads = [lead for lead, h in zip(feats.leads, hit) if h]
        if not leads:
            continue
        text = texts[code]
        if code == "lead_off":
            share = max(feats.flat_share[hit])
            text = text.format(f"{share:.0%}")
        if code == "static_noise" and severe.any():
            text = f"{text} (severe in {', '.join(np.asarray(feats.leads)[severe])})"
        result.add(code, f"{text}: {_lead_list(leads, feats.leads)}", leads)
    bad = findings["lead_off"] | findings["saturation"] | severe
    return [lead for lead, b in zip(feats.leads, bad) if b]


def _lead_list(leads: list[str], checked: list[str]) -> str:
    return "all leads" if len(leads) == len(checked) and len(leads) > 1 else ", ".join(leads)


# ---------------------------------------------------------------- too few leads

MIN_LEADS = 6
"""Default least number of usable leads (derived limb leads count): chosen from the
lead-removal table in docs/signal-checks.md (scripts/lead_removal.py). Six leads (the six
limb leads, or I and II with the other four derived, or the six chest leads) keep most of
the zero-shot AUC above chance; lead II alone leaves it near chance."""


def too_few_leads(lead_mask: np.ndarray, derived: list[str] | tuple[str, ...],
                  leads_found: list[str], min_leads: int) -> str | None:
    """The reason a record cannot be interpreted for lack of leads, or None.

    ``lead_mask``: ``(12,)`` usable leads (derived ones included); ``leads_found``: the
    header's names, to show what the record holds.

    >>> too_few_leads(np.arange(12) == 1, [], ["MLII", "V"], 6)
    'too few leads: 1 usable of the 12 standard leads (II; the record holds MLII, V), at least 6 needed (--min-leads)'
    """
    usable = [lead for lead, ok in zip(STANDARD_LEADS, lead_mask) if ok]
    if len(usable) >= min_leads:
        return None
    shown = ", ".join(f"{lead} (derived)" if lead in derived else lead for lead in usable)
    return (f"too few leads: {len(usable)} usable of the 12 standard leads ({shown or 'none'}; "
            f"the record holds {', '.join(leads_found) or 'none'}), at least {min_leads} "
            "needed (--min-leads)")


# ---------------------------------------------------------------- a record's output fields


def check_record(spans_mv: list[np.ndarray], starts: list[int], fs_hz: float,
                 lead_mask: np.ndarray, derived: tuple[str, ...] | list[str] = ()) -> dict:
    """The ``records.jsonl`` fields of the checks of a record read in spans (windows).

    ``spans_mv``: ``(12, n)`` mV arrays at ``fs_hz``; ``starts``: their first samples (a
    finding in a record of several spans names the span's start, in seconds).
    Returns ``{"quality": verdict, "signal_checks": [finding dicts]}``, the verdict the
    worst of the spans'.
    """
    total = SignalChecks()
    for span, start in zip(spans_mv, starts):
        where = f"at {start / fs_hz:g} s: " if len(spans_mv) > 1 else ""
        total.merge(check_signal(span, fs_hz, lead_mask, derived), where)
    return {"quality": total.verdict, "signal_checks": [f.as_dict() for f in total.findings]}
