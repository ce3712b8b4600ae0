"""Regenerate ``sample_ecgs/``: synthetic 12-lead ECGs as WFDB records, for demos and docs.

The records are simulated, not recorded: no patient data, no diagnosis implied. They
exist so that ``ecgreport batch sample_ecgs`` has something to run on right after
install and so that the README can show what the outputs look like.

Needs only numpy, scipy and wfdb (all dependencies of ecgreport)::

    python scripts/make_sample_ecgs.py            # writes sample_ecgs/ and checks it
    python scripts/make_sample_ecgs.py --check    # only checks the records already there

How a record is made (everything seeded, so a rerun with the same package versions
writes the same bytes):

1. **Rhythm.** A respiration signal (~15 breaths/min, slightly irregular) and from it a
   series of RR intervals around the record's mean: respiratory sinus arrhythmia
   (+-2.5 %), a slow 0.1 Hz (Mayer wave) component (+-1.5 %) and 1 % beat-to-beat jitter.
2. **Heart as a dipole.** The vectorcardiogram X (right -> left), Y (head -> feet),
   Z (front -> back; Frank's axes as in Dower's matrix) is, per beat, a sum of Gaussian
   waves, each with its own time, width and 3-D vector: the ECGSYN idea (McSharry et al.,
   IEEE TBME 50(3), 2003) written directly as a sum of Gaussians per beat, in 3-D.
   P (two Gaussians: right then left atrium), septal Q, R (two Gaussians: leftward-
   anterior then leftward-inferior-posterior, so the QRS loop turns as a real one does),
   S and an asymmetric T (two Gaussians). The vectors are those of a normal adult: QRS
   axis about +60 deg in the frontal plane, early forces rightward-anterior (septal q in
   I, aVL, V5-V6; r in V1), main forces leftward-inferior, terminal forces posterior
   (S in V1-V3), so that R grows and S shrinks from V1 to V6 with the transition at
   V3-V4; T leftward, inferior and anterior (upright in I, II, V2-V6, inverted in aVR).
   Timing per beat: PR ~160 ms at 70 bpm (a little shorter when faster), QRS ~90 ms,
   QT from Bazett (QTc ~400 ms, so QT = 0.40 s * sqrt(RR)) using the preceding RR
   interval. Each record is a different synthetic person: the seed also scales the
   vectors by a few percent and turns the frontal axis by a few degrees. Respiration
   modulates the beat amplitude (+-4 %).
3. **12 leads.** I, II and V1-V6 from X, Y, Z with Dower's transform (Dower, Machado &
   Osborne, Clin Cardiol 3, 1980: the X, Y, Z -> 12-lead direction; Edenbrandt &
   Pahlm's 1988 "inverse Dower" matrix goes the other way). The other four limb leads are computed from I and II as an
   electrocardiograph does: III = II - I, aVR = -(I + II)/2, aVL = I - II/2,
   aVF = II - I/2, so Einthoven's and Goldberger's identities hold up to the 1 uV
   rounding of the file.
4. **Noise** on I, II, V1-V6 before the four limb leads are derived: baseline wander
   (respiration-locked plus a slower drift, under 0.1 mV), white noise (10 uV RMS at the
   record's rate) and, in the records sampled at 250 Hz and more, a 50 Hz mains trace
   (a few uV).
5. Simulated at 500 Hz, resampled to the record's rate with an anti-aliasing polyphase
   filter (``scipy.signal.resample_poly``), as PTB-XL's 100 Hz records were made from
   500 Hz, and written with ``wfdb.wrsamp``: format 16, units mV, gain 1000 per mV
   (1 uV steps), baseline 0, no date/time, comments saying what the record is.

The check (run after writing, or alone with ``--check``) reads every record back with
ecgreport's own reader and checks leads, warnings, rate, heart rate, QRS amplitudes and
the limb-lead identities.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "sample_ecgs"

SIM_FS = 500  # Hz: every record is simulated at this rate, then resampled
MARGIN_S = 1.5  # beats are laid out this long before and after the kept span
TAIL_S = 1.0  # seconds simulated after the kept span, cut after resampling
ADC_GAIN = 1000.0  # digital units per mV

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF",
                  "V1", "V2", "V3", "V4", "V5", "V6")
# renamed_leads_250hz: header names and order, and which simulated lead each one is.
RENAMED = (("v5", "V5"), ("AVR", "aVR"), ("II", "II"), ("v1", "V1"), ("RESP", None),
           ("I", "I"), ("AVF", "aVF"), ("v3", "V3"), ("III", "III"), ("v2", "V2"),
           ("AVL", "aVL"), ("v6", "V6"), ("v4", "V4"))

# Dower's transform: the independent leads (rows) from the Frank VCG X, Y, Z (columns).
DOWER_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
DOWER = np.array([
    #  X       Y       Z
    [0.632, -0.235, 0.059],   # I
    [0.235, 1.066, -0.132],   # II
    [-0.515, 0.157, -0.917],  # V1
    [0.044, 0.164, -1.387],   # V2
    [0.882, 0.098, -1.277],   # V3
    [1.213, 0.127, -0.601],   # V4
    [1.125, 0.127, -0.086],   # V5
    [0.831, 0.076, 0.230],    # V6
])


@dataclass(frozen=True)
class Wave:
    """One Gaussian wave of a beat: ``vector`` (X, Y, Z in mV) * exp(-(t - t0)^2 / 2 sigma^2).

    ``t0`` (s) is relative to the R peak, except for P (relative to the middle of P,
    which moves with the beat's PR) and T (placed from the beat's QT): see
    :func:`beat_waves`.
    """

    name: str
    t0: float
    sigma: float
    vector: tuple[float, float, float]


# A normal adult's dipole. X: right -> left, Y: head -> feet, Z: front -> back.
WAVES = (
    Wave("P_right", -0.012, 0.016, (0.05, 0.09, -0.05)),  # right atrium: inferior, anterior
    Wave("P_left", 0.012, 0.016, (0.10, 0.04, 0.05)),  # left atrium: leftward, posterior
    Wave("Q", -0.022, 0.009, (-0.10, 0.02, -0.15)),  # septum: rightward, anterior
    Wave("R_early", -0.007, 0.009, (0.85, 0.28, -0.22)),  # free walls: leftward, anterior
    Wave("R_late", 0.007, 0.009, (0.63, 0.71, 0.11)),  # then leftward, inferior, posterior
    Wave("S", 0.026, 0.010, (-0.20, -0.10, 0.65)),  # terminal: posterior, superior
    Wave("T_up", 0.0, 0.0, (0.32, 0.17, -0.20)),  # T: slow limb (t0/sigma from QT)
    Wave("T", 0.0, 0.0, (0.32, 0.17, -0.20)),  # T: main lobe (t0/sigma from QT)
)
QRS_ONSET_S = -0.040  # QRS onset relative to R (Q: t0 - 2 sigma); QRS ~90 ms
PR_S = 0.160  # P onset to QRS onset at 70 bpm
P_HALF_S = 0.054  # P onset (3 % of its peak) to the middle of P (P ~110 ms)
QTC_S = 0.400  # Bazett: QT = QTC_S * sqrt(RR / 1 s)
T_SIGMA_PER_QT = 0.11  # T's sigma as a fraction of QT
T_END_SIGMAS = 2.5  # T ends this many sigmas after its peak
T_UP = (0.30, 1.1, 1.5)  # slow limb: amplitude, offset before the peak and width (sigmas)


@dataclass(frozen=True)
class Spec:
    name: str  # record path under the output folder, without extension
    heart_rate: float  # bpm, mean
    fs: int  # Hz, the record's sampling rate
    duration_s: float
    seed: int
    description: str
    renamed: bool = False  # header names/order from RENAMED, plus a RESP channel
    copy_of: str | None = None  # same signal as that record (shows recursive discovery)


SPECS = (
    Spec("normal_sinus_100hz", 70, 100, 10, 1001,
         "normal sinus rhythm, ~70 bpm, 100 Hz, standard lead names"),
    Spec("tachycardia_100hz", 125, 100, 10, 1002, "fast sinus rhythm, ~125 bpm, 100 Hz"),
    Spec("bradycardia_100hz", 45, 100, 10, 1003, "slow sinus rhythm, ~45 bpm, 100 Hz"),
    Spec("normal_500hz", 75, 500, 10, 1004, "normal sinus rhythm, ~75 bpm, 500 Hz"),
    Spec("renamed_leads_250hz", 65, 250, 10, 1005,
         "normal sinus rhythm, ~65 bpm, 250 Hz, leads renamed and reordered plus a RESP "
         "channel", renamed=True),
    Spec("long_30s_100hz", 80, 100, 30, 1006,
         "normal sinus rhythm, ~80 bpm, 100 Hz, 30 s (read in windows)"),
    Spec("subfolder/normal_sinus_copy", 70, 100, 10, 1001,
         "same signal as normal_sinus_100hz, in a subfolder", copy_of="normal_sinus_100hz"),
)


# ---------------------------------------------------------------------------- rhythm


def respiration(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A breathing waveform (~15/min, rate wandering +-10 %), -1 (exhaled) .. 1 (inhaled)."""
    rate_hz = 0.25 * (1 + 0.1 * np.sin(2 * np.pi * 0.03 * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(rate_hz) * (t[1] - t[0]) + rng.uniform(0, 2 * np.pi)
    wave = -np.cos(phase) + 0.2 * np.sin(2 * phase)  # faster inspiration than expiration
    return wave / np.max(np.abs(wave))


def r_peak_times(spec: Spec, t: np.ndarray, resp: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) covering ``t`` and each beat's preceding RR interval (s)."""
    rr_mean = 60.0 / spec.heart_rate
    mayer_phase = rng.uniform(0, 2 * np.pi)
    times, rrs = [], []
    now = t[0] + rng.uniform(0, rr_mean)
    rr = rr_mean
    while now < t[-1]:
        times.append(now)
        rrs.append(rr)
        r = float(np.interp(now, t, resp))  # inspiration shortens RR
        rr = rr_mean * (1 - 0.025 * r + 0.015 * math.sin(2 * math.pi * 0.1 * now + mayer_phase)
                        + 0.01 * rng.standard_normal())
        now += rr
    return np.array(times), np.array(rrs)


# ------------------------------------------------------------------------------ beats


def beat_waves(rr: float) -> list[tuple[float, float, np.ndarray]]:
    """The waves of one beat after an RR interval of ``rr`` s: (t0 rel. R, sigma, vector)."""
    pr = float(np.clip(PR_S * (rr / (60 / 70)) ** 0.3, 0.12, 0.20))
    qt = QTC_S * math.sqrt(rr)
    t_sigma = T_SIGMA_PER_QT * qt
    t_peak = QRS_ONSET_S + qt - T_END_SIGMAS * t_sigma
    p_mid = QRS_ONSET_S - pr + P_HALF_S
    out = []
    for w in WAVES:
        vec = np.array(w.vector)
        if w.name.startswith("P"):
            out.append((p_mid + w.t0, w.sigma, vec))
        elif w.name == "T_up":
            amp, offset, width = T_UP
            out.append((t_peak - offset * t_sigma, width * t_sigma, amp * vec))
        elif w.name == "T":
            out.append((t_peak, t_sigma, vec))
        else:
            out.append((w.t0, w.sigma, vec))
    return out


def person(rng: np.random.Generator) -> np.ndarray:
    """This record's small deviation from the template: a 3x3 matrix applied to every
    wave vector (frontal axis turned by up to ~+-8 deg, amplitude scaled by ~+-8 %)."""
    angle = math.radians(rng.uniform(-8, 8))  # positive: more vertical (rotation X -> Y)
    c, s = math.cos(angle), math.sin(angle)
    rotate = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return float(rng.uniform(0.92, 1.08)) * rotate


def vcg(spec: Spec, t: np.ndarray, resp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(3, len(t))`` X, Y, Z in mV."""
    out = np.zeros((3, t.size))
    shape = person(rng)
    beats, rrs = r_peak_times(spec, t, resp, rng)
    dt = t[1] - t[0]
    for r_time, rr in zip(beats, rrs):
        gain = (1 + 0.04 * float(np.interp(r_time, t, resp))) * (1 + 0.02 * rng.standard_normal())
        for t0, sigma, vec in beat_waves(rr):
            centre = r_time + t0
            lo = max(0, int((centre - 5 * sigma - t[0]) / dt))
            hi = min(t.size, int((centre + 5 * sigma - t[0]) / dt) + 2)
            if lo >= hi:
                continue
            g = np.exp(-0.5 * ((t[lo:hi] - centre) / sigma) ** 2)
            out[:, lo:hi] += gain * (shape @ vec)[:, None] * g[None, :]
    return out


# ----------------------------------------------------------------------------- leads


def baseline_wander(t: np.ndarray, resp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Baseline wander for the 8 independent leads, ``(8, len(t))`` mV, under 0.1 mV."""
    n = len(DOWER_LEADS)
    breathing = rng.uniform(0.01, 0.04, size=(n, 1)) * resp[None, :]
    drift_f = rng.uniform(0.03, 0.08, size=(n, 1))
    drift = rng.uniform(0.01, 0.04, size=(n, 1)) * np.sin(
        2 * np.pi * drift_f * t[None, :] + rng.uniform(0, 2 * np.pi, size=(n, 1)))
    return breathing + drift


def simulate(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """The 12 leads ``(12, duration_s * fs)`` in mV (rows in STANDARD_LEADS order) and the
    respiration channel ``(duration_s * fs,)`` in normalised units."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(spec.seed)
    n_sim = int(round((spec.duration_s + TAIL_S) * SIM_FS))
    t_all = np.arange(-int(MARGIN_S * SIM_FS), n_sim + int(MARGIN_S * SIM_FS)) / SIM_FS
    resp_all = respiration(t_all, rng)
    xyz = vcg(spec, t_all, resp_all, rng)
    kept = slice(int(MARGIN_S * SIM_FS), int(MARGIN_S * SIM_FS) + n_sim)
    t, resp = t_all[kept], resp_all[kept]
    eight = DOWER @ xyz[:, kept] + baseline_wander(t, resp, rng)
    if spec.fs != SIM_FS:
        g = math.gcd(spec.fs, SIM_FS)
        eight = resample_poly(eight, spec.fs // g, SIM_FS // g, axis=1)
        resp = resample_poly(resp, spec.fs // g, SIM_FS // g)
    n = int(round(spec.duration_s * spec.fs))
    eight, resp = eight[:, :n], resp[:n]
    eight = eight + rng.normal(0.0, 0.010, size=eight.shape)  # 10 uV white noise
    if spec.fs >= 250:  # a 50 Hz mains trace, a few uV (meaningless at 100 Hz sampling)
        t_out = np.arange(n) / spec.fs
        amp = rng.uniform(0.002, 0.006, size=(len(DOWER_LEADS), 1))
        phase = rng.uniform(0, 2 * np.pi, size=(len(DOWER_LEADS), 1))
        eight = eight + amp * np.sin(2 * np.pi * 50 * t_out[None, :] + phase)
    # Round I and II to the file's 1 uV grid first, so that III = II - I holds exactly.
    eight = np.round(eight * ADC_GAIN) / ADC_GAIN
    leads = dict(zip(DOWER_LEADS, eight))
    lead_i, lead_ii = leads["I"], leads["II"]
    leads["III"] = lead_ii - lead_i
    leads["aVR"] = -(lead_i + lead_ii) / 2
    leads["aVL"] = lead_i - lead_ii / 2
    leads["aVF"] = lead_ii - lead_i / 2
    return np.stack([leads[name] for name in STANDARD_LEADS]), resp


# ----------------------------------------------------------------------------- write


def write_record(spec: Spec, out: Path, signals: dict[str, np.ndarray]) -> None:
    import wfdb

    if spec.renamed:
        names = [header for header, _ in RENAMED]
        columns = [signals[lead] if lead else signals["RESP"] for _, lead in RENAMED]
        units = ["NU" if lead is None else "mV" for _, lead in RENAMED]
    else:
        names = list(STANDARD_LEADS)
        columns = [signals[lead] for lead in STANDARD_LEADS]
        units = ["mV"] * len(names)
    p_signal = np.stack(columns, axis=1)
    # Round to the 1 uV grid here so wfdb's own rounding cannot differ between versions.
    p_signal = np.round(p_signal * ADC_GAIN) / ADC_GAIN
    record_dir = out / Path(spec.name).parent
    record_dir.mkdir(parents=True, exist_ok=True)
    comments = [
        "SYNTHETIC ECG: simulated, not recorded from a person; no diagnosis implied",
        f"{spec.description}",
        "made by scripts/make_sample_ecgs.py: dipole VCG (Gaussian P/Q/R/S/T waves per beat) "
        f"-> Dower transform; mean heart rate {spec.heart_rate:g} bpm, PR ~160 ms, "
        f"QRS ~90 ms, QTc 400 ms (Bazett), seed {spec.seed}",
    ]
    if spec.renamed:
        comments.append("RESP: the simulated respiration that drives the sinus arrhythmia, "
                        "normalised units")
    wfdb.wrsamp(
        Path(spec.name).name, fs=spec.fs, units=units, sig_name=names, p_signal=p_signal,
        fmt=["16"] * len(names), adc_gain=[ADC_GAIN] * len(names), baseline=[0] * len(names),
        comments=comments, write_dir=str(record_dir),
    )


def generate(out: Path) -> None:
    made: dict[str, dict[str, np.ndarray]] = {}
    for spec in SPECS:
        if spec.copy_of:
            signals = made[spec.copy_of]
        else:
            leads, resp = simulate(spec)
            signals = dict(zip(STANDARD_LEADS, leads))
            if spec.renamed:
                signals["RESP"] = resp
        made[spec.name] = signals
        write_record(spec, out, signals)
        print(f"wrote {spec.name}")


# ----------------------------------------------------------------------------- check

MAIN_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


IDENTITY_LIMIT_UV = {"III = II - I": 0.0, "aVR = -(I+II)/2": 0.5, "aVL = I - II/2": 0.5,
                     "aVF = II - I/2": 0.5, "aVR+aVL+aVF = 0": 1.5}


def identity_residuals(signal_mv: np.ndarray) -> dict[str, float]:
    """Largest |residual| in uV of the Einthoven and Goldberger identities."""
    lead = dict(zip(STANDARD_LEADS, signal_mv.astype(np.float64)))
    i, ii = lead["I"], lead["II"]
    res = {
        "III = II - I": lead["III"] - (ii - i),
        "aVR = -(I+II)/2": lead["aVR"] + (i + ii) / 2,
        "aVL = I - II/2": lead["aVL"] - (i - ii / 2),
        "aVF = II - I/2": lead["aVF"] - (ii - i / 2),
        "aVR+aVL+aVF = 0": lead["aVR"] + lead["aVL"] + lead["aVF"],
    }
    return {k: float(np.abs(v).max() * 1000) for k, v in res.items()}


def check(out: Path) -> list[str]:
    """Read every record back with ecgreport's reader; return the problems found."""
    sys.path.insert(0, str(REPO))
    from ecgreport.records import find_records, read_record

    problems: list[str] = []
    found = {ref.record_id for ref in find_records(out)}
    expected = {spec.name for spec in SPECS}
    if found != expected:
        problems.append(f"records found {sorted(found)} != expected {sorted(expected)}")
    main = [STANDARD_LEADS.index(lead) for lead in MAIN_LEADS]
    for spec in SPECS:
        rec = read_record(out / spec.name)
        name = spec.name
        n = int(round(spec.duration_s * spec.fs))
        if rec.fs_hz != spec.fs or rec.signal_mv.shape != (12, n):
            problems.append(f"{name}: fs {rec.fs_hz}, shape {rec.signal_mv.shape}")
        if not rec.lead_mask.all():
            problems.append(f"{name}: leads masked: {rec.lead_mask}")
        want = ["dropped non-standard leads: RESP"] if spec.renamed else []
        if rec.warnings != want:
            problems.append(f"{name}: warnings {rec.warnings}")
        residuals = identity_residuals(rec.signal_mv)
        # III is exact in the file's 1 uV steps; aVR, aVL and aVF round a half uV each.
        off = {k: v for k, v in residuals.items() if v > IDENTITY_LIMIT_UV[k] + 0.01}
        if off:
            problems.append(f"{name}: limb-lead identities off by {off} uV")
        r_peaks = find_r_peaks(rec.signal_mv[1], rec.fs_hz)
        bpm = 60.0 * rec.fs_hz / float(np.mean(np.diff(r_peaks))) if len(r_peaks) > 1 else 0.0
        if abs(bpm - spec.heart_rate) > 0.1 * spec.heart_rate:
            problems.append(f"{name}: heart rate {bpm:.0f} bpm, wanted ~{spec.heart_rate:g}")
        qrs = qrs_peak_to_peak(rec.signal_mv, r_peaks, rec.fs_hz)
        if not ((qrs[main] >= 0.5) & (qrs[main] <= 2.5)).all():
            problems.append(f"{name}: QRS peak-to-peak per lead {np.round(qrs, 2)} mV")
        print(f"{name}: {rec.fs_hz:g} Hz, {rec.duration_s:g} s, ~{bpm:.0f} bpm, "
              f"QRS peak-to-peak {qrs[main].min():.2f}..{qrs[main].max():.2f} mV in "
              f"{', '.join(MAIN_LEADS)}; identities within "
              f"{max(residuals.values()):.2f} uV; leads {rec.leads_found}, "
              f"warnings {rec.warnings}")
    return problems


def find_r_peaks(lead_ii: np.ndarray, fs: float) -> np.ndarray:
    """R peaks of lead II, where R is the tallest deflection."""
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(lead_ii, height=0.6 * lead_ii.max(), distance=max(1, int(0.25 * fs)))
    return peaks


def qrs_peak_to_peak(signal_mv: np.ndarray, r_peaks: np.ndarray, fs: float) -> np.ndarray:
    """Per lead: the median over beats of the peak-to-peak amplitude within 50 ms of R."""
    half = max(1, int(round(0.05 * fs)))
    beats = [signal_mv[:, max(0, r - half): r + half + 1] for r in r_peaks]
    if not beats:
        return np.zeros(signal_mv.shape[0])
    return np.median([np.ptp(b, axis=1) for b in beats], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: sample_ecgs/ in the repository)")
    parser.add_argument("--check", action="store_true",
                        help="only check the records already in --out")
    args = parser.parse_args(argv)
    if not args.check:
        generate(args.out)
    problems = check(args.out)
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
