"""Validate ecgreport's measurements; write docs/measurements.md.

Two datasets, both read only here:

* **LUDB** (Kalyakulina et al., IEEE Access 8:186181, 2020; PhysioNet): 12 leads at 500 Hz
  with cardiologists' per-lead onsets and offsets of P, QRS and T. Per beat, the reference
  boundary is the median over the leads that annotate it (and, as a second row, the earliest
  onset / latest offset, the standard's definition of a global boundary, which independent
  per-lead annotations inflate). Differences per beat for the boundaries; per record for the
  intervals (the record's reference interval: the median over its annotated beats), for
  ecgreport and for neurokit2 (``ecg_delineate(method="dwt")`` on each lead with the same
  R peaks, then the median over leads per beat, as for the reference).
* **PTB-XL** (Wagner et al., Sci Data 7:154, 2020) fold 10 at 100 Hz: each measurement against
  the SCP statement or ``heart_axis`` it decides, at the standard cut-offs.

Usage (about 10 minutes on one core, most of it neurokit2)::

    nice python scripts/validate_measurements.py --ludb ../shared/data/ludb \\
        --ptbxl /work/data/ptb-xl > validate.log 2>&1

With ``--batch-ptbxl OUT10 --batch-ludb OUTLUDB`` (``ecgreport batch`` outputs of a folder
of links to the fold-10 records and of LUDB's ``data/``) the doc also counts how often the
generated reports contradict their measurements (``scripts/eval_contradictions.py``).

``--calibrate`` prints the LUDB boundary errors of records 1-99 only (where the
delineation thresholds were set) and stops. ``--details FILE.csv`` also writes each LUDB
record's reference and measured intervals and their differences (with ``--calibrate``:
records 1-99 only), to find the records that dominate a standard deviation.
"""

from __future__ import annotations

import argparse
import ast
import csv
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from ecgreport.measure import measure_ecg  # noqa: E402

LUDB_LEADS = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")
STD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
BOUNDS = ("p_on", "qrs_on", "qrs_off", "t_off")
INTERVALS = ("pr", "qrs", "qt")
# IEC 60601-2-25 (201.12.4.102.3.2): global intervals of diagnostic electrocardiographs,
# mean difference / standard deviation against the reference, ms.
IEC = {"pr": (10, 10), "qrs": (10, 10), "qt": (25, 30)}


# ------------------------------------------------------------------------- LUDB reference


def ludb_waves(record: Path, lead: str) -> list[tuple[str, int, int, int]]:
    """One lead's expert waves: ``(kind, onset, peak, offset)`` samples, kind p / N / t."""
    import wfdb

    ann = wfdb.rdann(str(record), lead)
    sym, smp = ann.symbol, ann.sample
    out = []
    for k in range(1, len(sym) - 1):
        if sym[k] in ("p", "N", "t") and sym[k - 1] == "(" and sym[k + 1] == ")":
            out.append((sym[k], int(smp[k - 1]), int(smp[k]), int(smp[k + 1])))
    return out


def ludb_reference(record: Path, fs: float) -> list[dict]:
    """Per annotated beat (QRS), the median and earliest/latest boundaries over the leads, s.

    A QRS is one beat across leads when its peaks lie within 80 ms; a lead's P belongs to
    the nearest beat whose QRS onset follows it within 0.45 s, its T to the nearest beat
    whose QRS offset precedes it within 0.7 s. Keys: ``r`` (median peak), ``<bound>``,
    ``<bound>_g`` and ``<bound>_spread`` (the standard deviation over the leads).
    """
    per_lead = {lead: ludb_waves(record, lead) for lead in LUDB_LEADS}
    peaks = sorted(w[2] for waves in per_lead.values() for w in waves if w[0] == "N")
    clusters: list[list[int]] = []
    for p in peaks:
        if clusters and p - clusters[-1][-1] <= 0.08 * fs:
            clusters[-1].append(p)
        else:
            clusters.append([p])
    beats = [{"r": float(np.median(c)), "vals": {b: [] for b in BOUNDS}} for c in clusters
             if len(c) >= 6]  # annotated in at least half of the leads
    centres = np.array([b["r"] for b in beats])
    for waves in per_lead.values():
        qrs = {}
        for kind, on, pk, off in waves:
            if kind == "N" and centres.size:
                k = int(np.argmin(np.abs(centres - pk)))
                if abs(centres[k] - pk) <= 0.08 * fs:
                    qrs[k] = (on, off)
                    beats[k]["vals"]["qrs_on"].append(on)
                    beats[k]["vals"]["qrs_off"].append(off)
        # Each P belongs to the nearest QRS after it, each T to the nearest QRS before it:
        # at fast rates a T also lies within 0.7 s of the QRS before its own, and counting
        # it twice mixed two beats' T waves into one reference.
        for kind, on, pk, off in waves:
            if kind == "p":
                after = [(q_on - on, k) for k, (q_on, _) in qrs.items()
                         if 0 < q_on - on <= 0.45 * fs and off <= q_on + 0.02 * fs]
                if after:
                    beats[min(after)[1]]["vals"]["p_on"].append(on)
            elif kind == "t":
                before = [(on - q_off, k) for k, (_, q_off) in qrs.items()
                          if 0 < on - q_off <= 0.7 * fs]
                if before:
                    beats[min(before)[1]]["vals"]["t_off"].append(off)
    out = []
    for b in beats:
        ref = {"r": b["r"] / fs}
        for bound, vals in b["vals"].items():
            if len(vals) >= 3:
                ref[bound] = float(np.median(vals)) / fs
                ref[bound + "_g"] = (min(vals) if bound.endswith("on") else max(vals)) / fs
                ref[bound + "_spread"] = float(np.std(vals, ddof=1)) / fs  # over the leads
        out.append(ref)
    return out


def beat_intervals(beat: dict, suffix: str = "") -> dict[str, float]:
    """PR, QRS and QT of one beat (s) from its boundaries, where they are present."""
    g = {b: beat.get(b + suffix) for b in BOUNDS}
    out = {}
    if g["p_on"] is not None and g["qrs_on"] is not None:
        out["pr"] = g["qrs_on"] - g["p_on"]
    if g["qrs_on"] is not None and g["qrs_off"] is not None:
        out["qrs"] = g["qrs_off"] - g["qrs_on"]
    if g["qrs_on"] is not None and g["t_off"] is not None:
        out["qt"] = g["t_off"] - g["qrs_on"]
    return out


def record_intervals(beats: list[dict], suffix: str = "") -> dict[str, float]:
    """The median over beats of each interval (s)."""
    per = [beat_intervals(b, suffix) for b in beats]
    return {k: float(np.median(v)) for k in INTERVALS
            if (v := [p[k] for p in per if k in p])}


# ------------------------------------------------------------------ measurers on LUDB


def ours_beats(signal: np.ndarray, fs: float, names) -> tuple[dict, list[dict]]:
    """ecgreport's measurements and its boundaries placed on every detected beat (s)."""
    m = measure_ecg(signal, fs, names, details=True)
    fid = m.pop("_fiducials")
    rel = {"p_on": fid.get("p_on"), "qrs_on": fid.get("qrs_on"), "qrs_off": fid.get("qrs_off"),
           "t_off": fid.get("t_end")}
    beats = [{"r": r / fs, **{k: r / fs + v for k, v in rel.items() if v is not None}}
             for r in fid["r_peaks"]]
    return m, beats


def neurokit_beats(signal: np.ndarray, fs: float) -> tuple[list[dict], float]:
    """neurokit2's per-lead DWT delineation with shared R peaks (from lead II), median over
    the leads per beat (s); and the seconds it took."""
    import neurokit2 as nk

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lead_ii = nk.ecg_clean(signal[1], sampling_rate=fs)
        _, info = nk.ecg_peaks(lead_ii, sampling_rate=fs)
        rpeaks = np.asarray(info["ECG_R_Peaks"])
        keys = {"p_on": "ECG_P_Onsets", "qrs_on": "ECG_R_Onsets", "qrs_off": "ECG_R_Offsets",
                "t_off": "ECG_T_Offsets"}
        per_lead = {k: [] for k in keys}
        for lead in signal:
            try:
                _, waves = nk.ecg_delineate(nk.ecg_clean(lead, sampling_rate=fs), rpeaks,
                                            sampling_rate=fs, method="dwt")
            except Exception:  # a lead neurokit2 cannot delineate counts as missing
                continue
            for k, name in keys.items():
                v = np.asarray(waves[name], dtype=float)
                if v.size == rpeaks.size:
                    per_lead[k].append(v)
    beats = []
    for i, r in enumerate(rpeaks):
        beat = {"r": r / fs}
        for k, arrays in per_lead.items():
            vals = [a[i] for a in arrays if np.isfinite(a[i])]
            if len(vals) >= 3:
                beat[k] = float(np.median(vals)) / fs
        beats.append(beat)
    return beats, time.perf_counter() - started


def match(ref: list[dict], est: list[dict], tol_s: float = 0.1) -> list[tuple[dict, dict]]:
    """Pairs (reference beat, estimated beat) whose R peaks lie within ``tol_s``."""
    if not est:
        return []
    r_est = np.array([b["r"] for b in est])
    out = []
    for b in ref:
        k = int(np.argmin(np.abs(r_est - b["r"])))
        if abs(r_est[k] - b["r"]) <= tol_s:
            out.append((b, est[k]))
    return out


def ludb_records(ludb: Path) -> list[Path]:
    return sorted((p.with_suffix("") for p in (ludb / "data").glob("*.hea")),
                  key=lambda p: int(p.name))


def read_ludb_signal(rec: Path) -> tuple[np.ndarray, float]:
    """A LUDB record's signal ``(12, n_samples)`` mV in STD_LEADS order, and its rate."""
    import wfdb

    sig, fields = wfdb.rdsamp(str(rec))
    names = [STD_LEADS[LUDB_LEADS.index(n.lower())] for n in fields["sig_name"]]
    return sig.T.astype(np.float64)[[names.index(n) for n in STD_LEADS]], float(fields["fs"])


def run_ludb(ludb: Path, with_neurokit: bool, ids: set[int] | None = None,
             fs_out: int | None = None) -> dict:
    """Per record: reference, ecgreport and neurokit2 beats and measurements."""
    out = []
    for rec in ludb_records(ludb):
        if ids is not None and int(rec.name) not in ids:
            continue
        signal, fs = read_ludb_signal(rec)
        ref = ludb_reference(rec, fs)
        if fs_out is not None and fs_out != fs:  # as PTB-XL's 100 Hz copies were made
            from scipy.signal import resample_poly

            signal = resample_poly(signal, fs_out, int(fs), axis=1)
            fs = float(fs_out)
        started = time.perf_counter()
        m, ours = ours_beats(signal, fs, STD_LEADS)
        ours_s = time.perf_counter() - started
        item = {"id": int(rec.name), "fs": fs, "ref": ref, "ours": ours, "m": m, "ours_s": ours_s}
        if with_neurokit:
            item["nk"], item["nk_s"] = neurokit_beats(signal, fs)
        out.append(item)
    return {"records": out}


def boundary_errors(records: list[dict], key: str, suffix: str = "") -> dict[str, list[float]]:
    """Per-beat differences estimate - reference (ms) for each boundary."""
    errs = {b: [] for b in BOUNDS}
    for item in records:
        if key not in item:
            continue
        for ref, est in match(item["ref"], item[key]):
            for b in BOUNDS:
                if b + suffix in ref and b in est:
                    errs[b].append(1000 * (est[b] - ref[b + suffix]))
    return errs


def interval_errors(records: list[dict], key: str, suffix: str = "") -> tuple[dict, dict]:
    """Per-record differences of the intervals (ms), and the share of records measured."""
    errs = {k: [] for k in INTERVALS}
    measured = {k: 0 for k in INTERVALS}
    n_ref = {k: 0 for k in INTERVALS}
    for item in records:
        ref = record_intervals(item["ref"], suffix)
        if key == "ours":
            m = item["m"]
            est = {"pr": m["pr_ms"], "qrs": m["qrs_ms"], "qt": m["qt_ms"]}
            est = {k: v / 1000 for k, v in est.items() if v is not None}
        else:
            est = record_intervals(item.get(key, []))
        for k in INTERVALS:
            if k in ref:
                n_ref[k] += 1
                if k in est:
                    measured[k] += 1
                    errs[k].append(1000 * (est[k] - ref[k]))
    share = {k: measured[k] / n_ref[k] if n_ref[k] else float("nan") for k in INTERVALS}
    return errs, share


def mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = np.asarray(values)
    return f"{v.mean():+.1f} / {v.std(ddof=1) if v.size > 1 else 0.0:.1f}"


# ------------------------------------------------------------------------------ PTB-XL


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    from scipy.stats import rankdata

    pos, neg = int(positive.sum()), int((~positive).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def sens_spec(pred: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    tp = int((pred & positive).sum())
    tn = int((~pred & ~positive).sum())
    return (tp / max(1, int(positive.sum())), tn / max(1, int((~positive).sum())))


def run_ptbxl(ptbxl: Path, limit: int | None = None) -> list[dict]:
    """Fold 10 at 100 Hz: measurements, SCP codes, heart_axis and the report, per record."""
    from ecgreport.records import read_record

    rows = []
    with open(ptbxl / "ptbxl_database.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["strat_fold"] == "10":
                rows.append(row)
    rows = rows[:limit] if limit else rows
    out = []
    for row in rows:
        rec = read_record(ptbxl / row["filename_lr"])
        started = time.perf_counter()
        m = measure_ecg(rec.signal_mv, rec.fs_hz, STD_LEADS, rec.lead_mask)
        out.append({"ecg_id": int(row["ecg_id"]), "m": m, "s": time.perf_counter() - started,
                    "codes": set(ast.literal_eval(row["scp_codes"])),
                    "heart_axis": row["heart_axis"].strip()})
    return out


PTBXL_TESTS = (
    # name, measurement key, code test, cut-off test
    ("rate < 60 /min vs SBRAD", "heart_rate_bpm", lambda r: "SBRAD" in r["codes"],
     lambda v: v < 60, -1),
    ("rate > 100 /min vs STACH", "heart_rate_bpm", lambda r: "STACH" in r["codes"],
     lambda v: v > 100, 1),
    ("PR > 200 ms vs 1AVB", "pr_ms", lambda r: "1AVB" in r["codes"], lambda v: v > 200, 1),
    ("QRS >= 120 ms vs CLBBB or CRBBB", "qrs_ms",
     lambda r: bool({"CLBBB", "CRBBB"} & r["codes"]), lambda v: v >= 120, 1),
    ("QTc (Bazett) > 450 ms vs LNGQT", "qtc_bazett_ms", lambda r: "LNGQT" in r["codes"],
     lambda v: v > 450, 1),
    ("QTc (Bazett) > 460 ms vs LNGQT", "qtc_bazett_ms", lambda r: "LNGQT" in r["codes"],
     lambda v: v > 460, 1),
    # heart_axis follows the German (Schiller) types: LAD "Linkstyp" (+30..-30), ALAD
    # "ueberdrehter Linkstyp" (below -30: the English left axis deviation), RAD / ARAD.
    ("QRS axis < -30 deg vs heart_axis ALAD", "qrs_axis_deg",
     lambda r: r["heart_axis"] == "ALAD", lambda v: -90 <= v < -30, -1),
    ("QRS axis < +30 deg vs heart_axis LAD or ALAD", "qrs_axis_deg",
     lambda r: r["heart_axis"] in ("LAD", "ALAD"), lambda v: -90 <= v < 30, -1),
    ("QRS axis > +90 deg vs heart_axis RAD or ARAD", "qrs_axis_deg",
     lambda r: r["heart_axis"] in ("RAD", "ARAD"), lambda v: v > 90, 1),
    ("QRS axis < -30 deg vs LAFB", "qrs_axis_deg", lambda r: "LAFB" in r["codes"],
     lambda v: -90 <= v < -30, -1),
)


def ptbxl_table(records: list[dict]) -> list[str]:
    lines = ["| test | n measured | positives | sensitivity | specificity | AUC of the value |",
             "|---|---|---|---|---|---|"]
    for name, key, is_pos, rule, sign in PTBXL_TESTS:
        have = [r for r in records if r["m"][key] is not None]
        if "axis" in name:  # heart_axis empty: no reference
            have = [r for r in have if r["heart_axis"]]
        values = np.array([r["m"][key] for r in have], dtype=float)
        positive = np.array([is_pos(r) for r in have], dtype=bool)
        pred = np.array([rule(v) for v in values], dtype=bool)
        se, sp = sens_spec(pred, positive)
        score = sign * values
        if "axis" in name:  # angles on -90..270, so that -90 (left) and +180 (right) stay apart
            score = sign * np.where(values < -90, values + 360, values)
        lines.append(f"| {name} | {len(have)} | {int(positive.sum())} | {se:.2f} | {sp:.2f} | "
                     f"{auc(score, positive):.3f} |")
    return lines


# -------------------------------------------------------------------------- LUDB diagnoses


def ludb_paced(ludb: Path) -> set[int]:
    """Records with a pacemaker (LUDB's "Cardiac pacing" column)."""
    with open(ludb / "ludb.csv", newline="", encoding="utf-8") as f:
        return {int(row["ID"]) for row in csv.DictReader(f) if row["Cardiac pacing"].strip()}


def ludb_diagnoses(ludb: Path) -> dict[int, dict[str, str]]:
    out = {}
    with open(ludb / "ludb.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[int(row["ID"])] = {"rhythm": row["Rhythms"].strip().lower(),
                                   "axis": row["Electric axis of the heart"].strip().lower()}
    return out


# LUDB's axis words follow the Russian convention (left deviation below 0 deg, horizontal
# 0..+30, normal +30..+70, vertical +70..+90, right deviation above +90); the standard
# (AHA/ACC/HRS) normal range is -30..+90.
LUDB_AXIS = (("left axis deviation", -180, 0), ("horizontal", 0, 30), ("normal", 30, 70),
             ("vertical", 70, 90), ("right axis deviation", 90, 180))


def ludb_axis_class(deg: int) -> str:
    for name, lo, hi in LUDB_AXIS:
        if lo <= deg < hi or (name == "right axis deviation" and deg == 180):
            return name
    return "right axis deviation"


def ludb_class_tables(records: list[dict], diag: dict[int, dict[str, str]]) -> list[str]:
    """Agreement of the measured axis class and rate class with LUDB's diagnoses."""
    lines = []
    pairs = []
    for item in records:
        text = diag.get(item["id"], {}).get("axis", "").removeprefix("electric axis of the heart:").strip()
        deg = item["m"]["qrs_axis_deg"]
        if text and deg is not None:
            pairs.append((text, ludb_axis_class(deg), deg))
    lines += ["| LUDB axis diagnosis (range read as) | n | measured class agrees | "
              "within 15 deg of the range | measured axis, median (min..max) |",
              "|---|---|---|---|---|"]
    for name, lo, hi in LUDB_AXIS:
        sel = [p for p in pairs if p[0] == name]
        if sel:
            agree = sum(a == b for a, b, _ in sel)
            near = sum(lo - 15 <= d <= hi + 15 for _, _, d in sel)
            degs = [d for _, _, d in sel]
            lines.append(f"| {name} ({lo:+d}..{hi:+d}) | {len(sel)} | {agree} ({agree / len(sel):.0%}) "
                         f"| {near} ({near / len(sel):.0%}) | {int(np.median(degs)):+d} "
                         f"({min(degs):+d}..{max(degs):+d}) |")
    pairs = []
    for item in records:
        rhythm = diag.get(item["id"], {}).get("rhythm", "")
        if rhythm.startswith("sinus bradycardia"):
            label = "brady"
        elif rhythm.startswith("sinus tachycardia"):
            label = "tachy"
        elif rhythm.startswith("sinus"):
            label = "normal"
        else:
            continue
        hr = item["m"]["heart_rate_bpm"]
        if hr is not None:
            pairs.append((label, "brady" if hr < 60 else "tachy" if hr > 100 else "normal"))
    lines += ["", "| LUDB sinus rhythm diagnosis | n | measured rate class agrees |",
              "|---|---|---|"]
    for label, text in (("brady", "sinus bradycardia (< 60 /min)"),
                        ("normal", "sinus rhythm or arrhythmia (60-100 /min)"),
                        ("tachy", "sinus tachycardia (> 100 /min)")):
        sel = [p for p in pairs if p[0] == label]
        if sel:
            agree = sum(a == b for a, b in sel)
            lines.append(f"| {text} | {len(sel)} | {agree} ({agree / len(sel):.0%}) |")
    af = [i for i in records if diag.get(i["id"], {}).get("rhythm", "").startswith(
        ("atrial fibrillation", "atrial flutter"))]
    if af:
        no_p = sum(i["m"]["pr_ms"] is None for i in af)
        irr = sum(bool(i["m"]["rr_irregular"]) for i in af)
        lines += ["", f"Atrial fibrillation or flutter ({len(af)} records): PR left empty in "
                      f"{no_p}, rhythm measured irregular in {irr}."]
    return lines


# ------------------------------------------------------------------------------- main


def ludb_tables(res: dict, with_neurokit: bool, paced: set[int], res100: dict) -> list[str]:
    recs = res["records"]
    subsets = (("all", recs), ("101-199 (held out)", [r for r in recs if r["id"] > 100]),
               ("all but paced", [r for r in recs if r["id"] not in paced]))
    at100 = ("all, resampled to 100 Hz", res100["records"])
    lines = ["| reference | method | records | " + " | ".join(
        f"{b} (beats)" for b in ("P onset", "QRS onset", "QRS offset", "T offset")) + " |",
        "|---|---|---|---|---|---|---|"]
    methods = [("ours", "ecgreport")] + ([("nk", "neurokit2 (dwt)")] if with_neurokit else [])
    for suffix, ref_name in (("", "median over leads"), ("_g", "earliest/latest over leads")):
        for halfname, sel in (*subsets, at100):
            for key, name in methods:
                if halfname == at100[0] and key != "ours":
                    continue
                errs = boundary_errors(sel, key, suffix)
                lines.append(f"| {ref_name} | {name} | {halfname} | " + " | ".join(
                    f"{mean_sd(errs[b])} ({len(errs[b])})" for b in BOUNDS) + " |")
    lines += ["", "| reference | method | records | PR | QRS duration | QT | share measured "
              "(PR / QRS / QT) |", "|---|---|---|---|---|---|---|"]
    for suffix, ref_name in (("", "median over leads"), ("_g", "earliest/latest over leads")):
        for halfname, sel in (*subsets, at100):
            for key, name in methods:
                if halfname == at100[0] and key != "ours":
                    continue
                errs, share = interval_errors(sel, key, suffix)
                lines.append(f"| {ref_name} | {name} | {halfname} | " + " | ".join(
                    f"{mean_sd(errs[k])}" for k in INTERVALS) + " | " + " / ".join(
                    f"{share[k]:.0%}" for k in INTERVALS) + " |")
    lines.append(f"| IEC 60601-2-25 tolerance | | | +-{IEC['pr'][0]} / {IEC['pr'][1]} | "
                 f"+-{IEC['qrs'][0]} / {IEC['qrs'][1]} | +-{IEC['qt'][0]} / {IEC['qt'][1]} | |")
    lines += ["", *refusals(recs), "", reference_spread(recs)]
    return lines


def refusals(records: list[dict]) -> list[str]:
    """Why ecgreport left an interval empty on LUDB: records and reasons, per interval."""
    out = []
    for k, key in (("PR", "pr_ms"), ("QRS duration", "qrs_ms"), ("QT", "qt_ms")):
        reasons: dict[str, int] = {}
        for item in records:
            if item["m"][key] is None:
                why = item["m"]["reasons"].get(key, "not measurable")
                reasons[why] = reasons.get(why, 0) + 1
        n = sum(reasons.values())
        detail = "; ".join(f"{why} ({c})"
                           for why, c in sorted(reasons.items(), key=lambda t: -t[1]))
        out.append(f"- {k}: ecgreport left it empty in {n} of {len(records)} records"
                   + (f": {detail}." if n else "."))
    return ["Records ecgreport did not measure (the measurement is empty, with its reason; "
            "those whose reference has the interval count against the share measured above):",
            "", *out]


def reference_spread(records: list[dict]) -> str:
    """How far the cardiologists' per-lead boundaries of one beat lie apart."""
    parts = []
    for b, name in zip(BOUNDS, ("P onset", "QRS onset", "QRS offset", "T offset")):
        sd = [1000 * beat[b + "_spread"] for item in records for beat in item["ref"]
              if b + "_spread" in beat]
        if sd:
            parts.append(f"{name} {np.median(sd):.0f} ({np.percentile(sd, 90):.0f})")
    return ("Spread of the reference itself: the standard deviation over the leads of the "
            "cardiologists' boundaries of one beat, median (90th percentile) over the beats, "
            "ms: " + ", ".join(parts) + ". The reference is the median of these per-lead "
            "marks, a global measurement is one boundary for all leads: where the leads' "
            "marks spread widely the two differ by the morphology of the record, not only by "
            "the method's error.")


def write_details(path: Path, records: list[dict], paced: set[int],
                  diag: dict[int, dict[str, str]]) -> None:
    """Per LUDB record: the reference intervals, ecgreport's (and neurokit2's) and the
    differences (ms), for finding the records that dominate a standard deviation."""
    cols = ["id", "paced", "rhythm"]
    for k in INTERVALS:
        cols += [f"{k}_ref", f"{k}_ours", f"{k}_ours_err", f"{k}_nk_err"]
    cols.append("reasons")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for item in records:
            ref = record_intervals(item["ref"])
            nk = record_intervals(item["nk"]) if "nk" in item else {}
            rhythm = diag.get(item["id"], {}).get("rhythm", "")
            row = [item["id"], int(item["id"] in paced), rhythm]
            for k in INTERVALS:
                ours = item["m"][f"{k}_ms"]
                r = 1000 * ref[k] if k in ref else None
                err = ours - r if ours is not None and r is not None else None
                nk_err = 1000 * nk[k] - r if k in nk and r is not None else None
                row += [_fmt(r), _fmt(ours), _fmt(err), _fmt(nk_err)]
            row.append("; ".join(f"{k}: {v}" for k, v in item["m"]["reasons"].items()))
            w.writerow(row)


def _fmt(value) -> str:
    return "" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ludb", type=Path, default=REPO.parent / "shared" / "data" / "ludb")
    parser.add_argument("--ptbxl", type=Path, default=Path("/work/data/ptb-xl"))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "measurements.md")
    parser.add_argument("--no-neurokit", action="store_true")
    parser.add_argument("--calibrate", action="store_true",
                        help="print LUDB 1-99 errors of ecgreport only, write nothing")
    parser.add_argument("--limit", type=int, default=None, help="PTB-XL records (for a try)")
    parser.add_argument("--details", type=Path, default=None,
                        help="also write per-record LUDB interval errors to this CSV")
    parser.add_argument("--batch-ptbxl", type=Path, default=None,
                        help="ecgreport batch output of PTB-XL fold 10 (contradiction counts)")
    parser.add_argument("--batch-ludb", type=Path, default=None,
                        help="ecgreport batch output of LUDB (contradiction counts)")
    args = parser.parse_args(argv)

    if args.calibrate:
        res = run_ludb(args.ludb, False, ids=set(range(1, 100)))
        for suffix in ("",):
            errs = boundary_errors(res["records"], "ours", suffix)
            print("boundaries", {b: mean_sd(errs[b]) for b in BOUNDS})
            ierr, share = interval_errors(res["records"], "ours", suffix)
            print("intervals", {k: mean_sd(ierr[k]) for k in INTERVALS}, share)
        if args.details:
            write_details(args.details, res["records"], ludb_paced(args.ludb),
                          ludb_diagnoses(args.ludb))
        return 0

    started = time.perf_counter()
    res = run_ludb(args.ludb, not args.no_neurokit)
    res100 = run_ludb(args.ludb, False, fs_out=100)
    recs = res["records"]
    paced = ludb_paced(args.ludb)
    ours_ms = 1000 * np.mean([r["ours_s"] for r in recs])
    nk_ms = 1000 * np.mean([r["nk_s"] for r in recs]) if not args.no_neurokit else float("nan")
    print(f"LUDB done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.details:
        write_details(args.details, recs, paced, ludb_diagnoses(args.ludb))
    ptb = run_ptbxl(args.ptbxl, args.limit)
    print(f"PTB-XL done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    diag = ludb_diagnoses(args.ludb)

    doc = [
        "# Measurements: validation",
        "",
        "Written by `scripts/validate_measurements.py` (do not edit by hand). What is measured "
        "and how: `ecgreport/measure/intervals.py`.",
        "",
        "## LUDB: boundaries and intervals against cardiologists' delineation",
        "",
        "LUDB (Kalyakulina et al., IEEE Access 8:186181-186190, 2020; PhysioNet, Goldberger et "
        f"al. 2000): the {len(recs)} records available here, 12 leads at 500 Hz. Reference per "
        "beat: the median over the leads of the cardiologists' per-lead onsets and offsets; the "
        "earliest onset / latest offset over the leads (the standard's global boundary, inflated "
        "by the spread of independent per-lead annotations) as a second reference. Boundaries: "
        "mean / SD of the differences (measured - reference, ms) over matched beats. Intervals: "
        "mean / SD over records of the record's measurement minus the median over its annotated "
        "beats. A lead's P wave belongs to the nearest QRS after it, its T wave to the nearest "
        "QRS before it. neurokit2 " + _nk_version() + ": `ecg_delineate(method=\"dwt\")` on "
        "each lead "
        "with R peaks from lead II, median over the leads per beat, median over beats per "
        "record. ecgreport's thresholds were set on records 1-99, so the rows for records "
        "101-199 are the held-out check.",
        "",
        *ludb_tables(res, not args.no_neurokit, paced, res100),
        "",
        f"Time per record (12 leads, 10 s, one core of a shared machine, mean): ecgreport "
        f"{ours_ms:.1f} ms at 500 Hz (LUDB; with the per-beat boundaries this table needs), "
        f"{1000 * np.mean([r['s'] for r in ptb]):.2f} ms at 100 Hz (PTB-XL fold 10); "
        f"neurokit2 {nk_ms:.0f} ms at 500 Hz (12 leads delineated, as in the table).",
        "",
        "## LUDB: axis and rate classes against the diagnoses",
        "",
        "LUDB does not state the ranges of its axis words; the ranges below are our reading of "
        "the Russian convention its cardiologists use. Rate classes at 60 and 100 /min.",
        "",
        *ludb_class_tables(recs, diag),
        "",
        "## PTB-XL fold 10: measurements against the statements they decide",
        "",
        f"PTB-XL (Wagner et al., Sci Data 7:154, 2020), fold 10, {len(ptb)} records at 100 Hz; "
        "statements from `scp_codes` (any likelihood), axis from the `heart_axis` column. "
        "Sensitivity and specificity at the standard cut-off; AUC of the measured value "
        "(records where the value was measured). `heart_axis` is read as the German (Schiller) "
        "axis types: ALAD the English left axis deviation (below -30 deg), LAD the wider "
        "'Linkstyp' (below +30 deg). PTB-XL codes SBRAD mostly below 50 /min, hence the "
        "specificity of the 60 /min cut-off.",
        "",
        *ptbxl_table(ptb),
        "",
        "Share of fold-10 records with each value measured: " + ", ".join(
            f"{k} {np.mean([r['m'][k] is not None for r in ptb]):.1%}"
            for k in ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qrs_axis_deg")) + ".",
        "",
    ]
    if args.batch_ptbxl or args.batch_ludb:
        import eval_contradictions as ec

        doc += ["## Generated reports against their measurements", "",
                "`ecgreport.measure.contradictions.check_report` on the reports of `ecgreport "
                "batch` (the packaged model): how often a statement is corrected or flagged, "
                "and the statement scores (`ecgreport.evaluation.statements`, PTB-XL "
                "`scp_codes`) of the generated and the corrected reports. The margins "
                "(bradycardia corrected below 50 /min, right bundle branch block only flagged) "
                "were set on PTB-XL fold 9.", ""]
        if args.batch_ptbxl:
            doc += ec.markdown(ec.evaluate(args.batch_ptbxl, args.ptbxl), "PTB-XL fold 10") + [""]
        if args.batch_ludb:
            doc += ec.markdown(ec.evaluate(args.batch_ludb, None), "LUDB") + [""]
    args.out.write_text("\n".join(doc), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _nk_version() -> str:
    try:
        import neurokit2

        return neurokit2.__version__
    except ImportError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(main())
