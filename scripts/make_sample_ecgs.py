"""Regenerate ``sample_ecgs/``: synthetic 12-lead ECGs as WFDB records, for demos and docs.

The records are simulated, not recorded: no patient data, no diagnosis implied. They
exist so that ``ecgreport batch sample_ecgs`` has something to run on right after
install and so that the README can show what the outputs look like.

Needs neurokit2, which is *not* a dependency of ecgreport (only this script uses it)::

    pip install neurokit2
    python scripts/make_sample_ecgs.py            # writes sample_ecgs/ and checks it
    python scripts/make_sample_ecgs.py --check    # only checks the records already there

How a record is made (everything seeded, so a rerun with the same package versions
writes the same bytes):

1. ``neurokit2.ecg_simulate(method="multileads")`` (ECGSYN, McSharry et al. 2003, with
   neurokit2's 12-lead wave-amplitude matrix) at 500 Hz, with ``WARMUP_S`` seconds
   before and ``TAIL_S`` after the span kept. ECGSYN starts from a fixed initial state
   and its baseline relaxes from there over the first seconds; the warm-up is dropped.
2. Scale. neurokit2 min-max scales every lead on its own to -0.4..1.2 mV, so its
   output is nominally in mV but the isoelectric line sits anywhere from -0.2 to
   +0.3 mV, and the range is taken over the warm-up too. Each lead is therefore shifted
   so that its isoelectric level (the most frequent value: the flat TP/PR segments) is
   0 mV, and scaled so that its peak-to-peak amplitude over the kept span is 1.6 mV,
   the range neurokit2 itself aims at. The largest deflection from baseline is then
   0.8..1.6 mV in every lead.
3. Resample to the record's rate with an anti-aliasing polyphase filter
   (``scipy.signal.resample_poly``), as PTB-XL's 100 Hz records were made from 500 Hz,
   then cut the tail margin (which absorbs the filter's edge effects).
4. Write with ``wfdb.wrsamp``: format 16, units mV, gain 1000 per mV (1 µV steps),
   baseline 0, no date/time, comments saying what the record is.

Known limits of the simulator (see sample_ecgs/README.md): every lead is generated on
its own, so the limb leads obey Einthoven's law (III = II - I) only roughly, all leads have
the same peak-to-peak amplitude, and in several leads (II, aVF, V1, V5, V6) the T wave
is taller than the QRS. The rhythm and rate are right; the morphology is only
ECG-like. A model trained on real ECGs may score these oddly.
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
WARMUP_S = 4.0  # seconds simulated before the kept span and dropped
TAIL_S = 1.0  # seconds simulated after the kept span and dropped
PTP_MV = 1.6  # peak-to-peak per lead after rescaling (neurokit2's own -0.4..1.2 mV)
ADC_GAIN = 1000.0  # digital units per mV
NOISE = 0.01  # neurokit2's default measurement noise (relative to the signal's SD)

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF",
                  "V1", "V2", "V3", "V4", "V5", "V6")
# renamed_leads_250hz: header names and order, and which simulated lead each one is.
RENAMED = (("v5", "V5"), ("AVR", "aVR"), ("II", "II"), ("v1", "V1"), ("RESP", None),
           ("I", "I"), ("AVF", "aVF"), ("v3", "V3"), ("III", "III"), ("v2", "V2"),
           ("AVL", "aVL"), ("v6", "V6"), ("v4", "V4"))


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


def simulate_12_leads(spec: Spec) -> np.ndarray:
    """``(12, duration_s * fs)`` float64 in mV, rows in STANDARD_LEADS order."""
    import neurokit2 as nk
    from scipy.signal import resample_poly

    total_s = WARMUP_S + spec.duration_s + TAIL_S
    df = nk.ecg_simulate(duration=total_s, sampling_rate=SIM_FS, heart_rate=spec.heart_rate,
                         heart_rate_std=1, noise=NOISE, method="multileads",
                         random_state=spec.seed)
    if list(df.columns) != list(STANDARD_LEADS):
        raise RuntimeError(f"unexpected neurokit2 lead order: {list(df.columns)}")
    sim = df.to_numpy(dtype=float, copy=True).T  # (12, n) at SIM_FS
    start = int(round(WARMUP_S * SIM_FS))
    kept = slice(start, start + int(round(spec.duration_s * SIM_FS)))
    sim = sim[:, start:]  # warm-up dropped; the tail stays until after resampling
    for row in sim:
        span = row[: kept.stop - start]
        row -= isoelectric_level(span)
        row *= PTP_MV / np.ptp(span)
    if spec.fs != SIM_FS:
        g = math.gcd(spec.fs, SIM_FS)
        sim = resample_poly(sim, spec.fs // g, SIM_FS // g, axis=1)
    return sim[:, : int(round(spec.duration_s * spec.fs))]


def isoelectric_level(x: np.ndarray) -> float:
    """The value the signal spends most time at (the flat PR/TP segments): the median of
    the samples within 0.02 of the densest 0.01-wide histogram bin."""
    edges = np.arange(x.min(), x.max() + 0.01, 0.01)
    counts, edges = np.histogram(x, bins=edges)
    i = int(np.argmax(counts))
    centre = (edges[i] + edges[i + 1]) / 2
    return float(np.median(x[np.abs(x - centre) <= 0.02]))


def simulate_resp(spec: Spec) -> np.ndarray:
    """A respiration-like channel (breathing ~15/min), in normalised units."""
    import neurokit2 as nk
    from scipy.signal import resample_poly

    total_s = int(math.ceil(spec.duration_s + TAIL_S))  # rsp_simulate needs an int here
    rsp = nk.rsp_simulate(duration=total_s, sampling_rate=SIM_FS, respiratory_rate=15,
                          random_state=spec.seed)
    rsp = np.asarray(rsp, dtype=float)
    if spec.fs != SIM_FS:
        g = math.gcd(spec.fs, SIM_FS)
        rsp = resample_poly(rsp, spec.fs // g, SIM_FS // g)
    return rsp[: int(round(spec.duration_s * spec.fs))]


def write_record(spec: Spec, out: Path, signals: dict[str, np.ndarray]) -> None:
    import neurokit2 as nk
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
    # Round to the 1 µV grid here so wfdb's own rounding cannot differ between versions.
    p_signal = np.round(p_signal * ADC_GAIN) / ADC_GAIN
    record_dir = out / Path(spec.name).parent
    record_dir.mkdir(parents=True, exist_ok=True)
    comments = [
        "SYNTHETIC ECG: simulated, not recorded from a person; no diagnosis implied",
        f"{spec.description}",
        f"made by scripts/make_sample_ecgs.py with neurokit2 {nk.__version__} "
        f"ecg_simulate(method=multileads, heart_rate={spec.heart_rate:g}, "
        f"random_state={spec.seed})",
    ]
    if spec.renamed:
        comments.append("RESP: simulated respiration (neurokit2 rsp_simulate), normalised units")
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
            leads = simulate_12_leads(spec)
            signals = dict(zip(STANDARD_LEADS, leads))
            if spec.renamed:
                signals["RESP"] = simulate_resp(spec)
        made[spec.name] = signals
        write_record(spec, out, signals)
        print(f"wrote {spec.name}")


def check(out: Path) -> list[str]:
    """Read every record back with ecgreport's reader; return the problems found."""
    sys.path.insert(0, str(REPO))
    from ecgreport.records import find_records, read_record

    problems: list[str] = []
    found = {ref.record_id for ref in find_records(out)}
    expected = {spec.name for spec in SPECS}
    if found != expected:
        problems.append(f"records found {sorted(found)} != expected {sorted(expected)}")
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
        peak = np.abs(rec.signal_mv).max(axis=1)
        if not ((peak >= 0.5) & (peak <= 3.0)).all():
            problems.append(f"{name}: largest deflection per lead {np.round(peak, 2)} mV")
        r_peaks = find_r_peaks(rec.signal_mv[0], rec.fs_hz)
        bpm = 60.0 * rec.fs_hz / float(np.mean(np.diff(r_peaks))) if len(r_peaks) > 1 else 0.0
        if abs(bpm - spec.heart_rate) > 0.1 * spec.heart_rate:
            problems.append(f"{name}: heart rate {bpm:.0f} bpm, wanted ~{spec.heart_rate:g}")
        qrs = qrs_amplitude(rec.signal_mv, r_peaks, rec.fs_hz)
        # neurokit2's lead templates make QRS small in some leads (II ~0.2, aVF ~0.1 mV):
        # require it visible everywhere and >= 0.5 mV in most leads.
        if not ((qrs >= 0.05).all() and np.median(qrs) >= 0.5):
            problems.append(f"{name}: QRS amplitude per lead {np.round(qrs, 2)} mV")
        print(f"{name}: {rec.fs_hz:g} Hz, {rec.duration_s:g} s, ~{bpm:.0f} bpm, "
              f"largest deflection per lead {peak.min():.2f}..{peak.max():.2f} mV, "
              f"QRS peak per lead {qrs.min():.2f}..{qrs.max():.2f} mV, "
              f"leads {rec.leads_found}, warnings {rec.warnings}")
    return problems


def find_r_peaks(lead_i: np.ndarray, fs: float) -> np.ndarray:
    """R peaks of lead I, where R is the tallest deflection of this simulator's lead I."""
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(lead_i, height=0.6 * lead_i.max(), distance=max(1, int(0.25 * fs)))
    return peaks


def qrs_amplitude(signal_mv: np.ndarray, r_peaks: np.ndarray, fs: float) -> np.ndarray:
    """Per lead: the median over beats of the largest |value| within 40 ms of R."""
    half = max(1, int(round(0.04 * fs)))
    beats = [signal_mv[:, max(0, r - half): r + half + 1] for r in r_peaks]
    if not beats:
        return np.zeros(signal_mv.shape[0])
    return np.median([np.abs(b).max(axis=1) for b in beats], axis=0)


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
