"""Validate ecgreport's signal checks on PTB-XL (Wagner et al. 2020); write the tables.

1. Thresholds: the quality features of every record of folds 1-9, against PTB-XL's own
   `baseline_drift`, `static_noise`, `burst_noise` columns (a record is positive when its
   column is not empty); the feature value at SPECIFICITY on the label-negative records is
   printed beside the threshold the module uses (the module's constants were set from it).
2. Agreement on fold 10 (not used to choose anything): sensitivity, specificity, PPV of
   each check against its column (`electrodes_problems` against "lead off"), and the AUC
   of the feature; the record verdicts against "any column filled".
3. Made to fail: every fold-10 record altered (I and II swapped, all leads inverted,
   left/right arm electrodes reversed, amplitude x10, a lead off for 5 s, a lead clipped,
   white noise, baseline drift): the share of records where the check fires, beside its
   false-alarm rate on the unaltered records. Consistency: the identity residuals of
   every PTB-XL record against the tolerance.
4. Speed: ms per record of :func:`ecgreport.signal.checks.check_signal` at 100 Hz and at
   500 Hz (the 100 Hz records resampled), beside ``wfdb.rdsamp`` of the same records.

    nice python scripts/signal_checks_ptbxl.py --data /work/data/ptb-xl --doc docs/signal-checks.md
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_blocks import replace_block  # noqa: E402

from ecgreport.leads import STANDARD_LEADS  # noqa: E402
from ecgreport.signal import checks as C  # noqa: E402

SPECIFICITY = 0.975
COLUMNS = {  # PTB-XL column -> (check code, feature used for its AUC and threshold)
    "baseline_drift": ("baseline_drift", "drift"),
    "static_noise": ("static_noise", "noise"),
    "burst_noise": ("burst_noise", "burst_ratio"),
    "electrodes_problems": ("lead_off", "flat_share"),
}
ROW = {lead: i for i, lead in enumerate(STANDARD_LEADS)}


def record_features(feats) -> dict[str, float]:
    """The record-level value of each feature: its largest value over the leads."""
    return {"drift": float(feats.drift.max()), "noise": float(feats.noise.max()),
            "burst_ratio": float(feats.burst_ratio.max()), "flat_share": float(feats.flat_share.max())}


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    from scipy.stats import rankdata

    pos = y.sum()
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def column_leads(text: str) -> set[str] | None:
    """The leads a PTB-XL quality comment names (``" , I-AVF,  "``, ``"alles"``,
    ``"v1-6"``), or None when it names none (``"noisy recording"``, ``"leicht"``).

    >>> sorted(column_leads(" , V5,V6"), key=STANDARD_LEADS.index)
    ['V5', 'V6']
    >>> len(column_leads("alles")), column_leads(" , I-AVR,  ") == {"I", "II", "III", "aVR"}
    (12, True)
    """
    from ecgreport.leads import canonical_lead

    found: set[str] = set()
    for token in text.replace("?", "").replace(" ", "").lower().split(","):
        if token in ("alles", "alle"):
            return set(STANDARD_LEADS)
        a, _, b = token.partition("-")
        first = canonical_lead(a) if a else None
        if b and first:
            last = canonical_lead(b) or (canonical_lead("v" + b) if first.startswith("V") else None)
            if last and STANDARD_LEADS.index(last) >= STANDARD_LEADS.index(first):
                found.update(STANDARD_LEADS[STANDARD_LEADS.index(first):
                                            STANDARD_LEADS.index(last) + 1])
        elif first and not b:
            found.add(first)
    return found or None


# ---------------------------------------------------------------- alterations


def swap_i_ii(x):
    x = x.copy()
    x[[0, 1]] = x[[1, 0]]
    return x


def arm_reversal(x):
    """Left and right arm electrodes exchanged: I -> -I, II <-> III, aVR <-> aVL."""
    x = x.copy()
    x[0] = -x[0]
    x[[1, 2]] = x[[2, 1]]
    x[[3, 4]] = x[[4, 3]]
    return x


def lead_off(x):
    x = x.copy()
    x[ROW["V2"], 300:800] = x[ROW["V2"], 299]  # 5 s of a constant value
    return x


def clipped(x):
    x = x.copy()
    v = x[ROW["V2"]]
    limit = np.median(v) + 0.4 * (v.max() - np.median(v))
    x[ROW["V2"]] = np.minimum(v, limit)
    return x


def at_electrodes(x):
    """III, aVR, aVL, aVF derived again from I and II: noise and drift arise at the
    electrodes, so a recorder's limb leads keep their identities."""
    from ecgreport.signal.limb import derive_limb_leads

    mask = np.ones(12, bool)
    mask[2:6] = False
    derive_limb_leads(x, mask)
    return x


def noisy(x, rng, rms_mv=0.1):
    return at_electrodes(x + rng.normal(0, rms_mv, x.shape).astype(np.float32))


def drifting(x, rng):
    t = np.arange(x.shape[1]) / 100
    wave = np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 6.3, (12, 1)))
    return at_electrodes(x + wave.astype(np.float32))


def alterations(rng):
    return [
        ("I and II swapped (labels)", "limb_leads_inconsistent", swap_i_ii),
        ("all leads inverted", "polarity_inverted", lambda x: -x),
        ("left/right arm electrodes reversed", "arm_leads_reversed", arm_reversal),
        ("amplitude x10", "amplitude_implausible", lambda x: 10 * x),
        ("V2 off for 5 s (constant)", "lead_off", lead_off),
        ("V2 clipped at 40% of its peak", "saturation", clipped),
        ("white noise 0.1 mV RMS at every electrode", "static_noise", lambda x: noisy(x, rng)),
        ("white noise 0.3 mV RMS at every electrode", "static_noise",
         lambda x: noisy(x, rng, 0.3)),
        ("baseline drift 1 mV at 0.15 Hz at every electrode", "baseline_drift",
         lambda x: drifting(x, rng)),
    ]


# ---------------------------------------------------------------- the doc's table of checks


def checks_table() -> str:
    """What each check looks for, with the module's constants (never typed in the doc)."""
    return "\n".join([
        "| check | fires when | finding (`check`) |", "|---|---|---|",
        "| limb-lead consistency | `III = II - I`, `aVR + aVL + aVF = 0` (and the other "
        "Goldberger identities) miss by more than "
        f"{C.CONSISTENCY_TOL:.0%} of the limb-lead amplitude; the one swap of two channels or "
        "inversion of one that restores them is named | `limb_leads_inconsistent` |",
        "| polarity | aVR upright and lead I negative (typical beat's (R - S) / (R + S) beyond "
        f"+-{C.POLARITY:g}): arm electrodes reversed (or dextrocardia, an extreme right axis); "
        "with V5/V6 (or II) negative too, the whole record inverted | `arm_leads_reversed`, "
        "`polarity_inverted` |",
        f"| amplitude | typical QRS over {C.AMPLITUDE_HIGH_MV:g} mV peak to peak (median over "
        f"the leads), or under {C.AMPLITUDE_LOW_MV:g} mV in every lead: wrong units or gain | "
        "`amplitude_implausible` |",
        f"| baseline drift | the 1 s medians of a lead range over {C.DRIFT_MV:g} mV or more | "
        "`baseline_drift` |",
        "| static noise | a lead's noise floor (median second difference at ~100 Hz) at or "
        f"above {C.NOISE_MV:g} mV | `static_noise` |",
        f"| burst noise | one second's noise floor {C.BURST_RATIO:g} times the lead's own (at "
        f"least {C.NOISE_FLOOR_MIN_MV:g} mV) | `burst_noise` |",
        f"| lead off | {C.LEAD_OFF_FRACTION:.0%} of a lead's 1 s blocks without activity "
        f"(under {C.FLAT_BLOCK_MV:g} mV peak to peak) | `lead_off` |",
        f"| saturation | {C.SATURATION_FRACTION:.0%} of a lead's samples held at its maximum "
        "or minimum (the converter's limit) | `saturation` |",
        "",
        "Quality verdict: `unreadable` (a reader should not interpret it) for an implausible "
        f"amplitude, or when at least {C.UNREADABLE_SHARE:.0%} of the recorded leads are off, "
        f"saturated or swamped by noise (a floor of {C.NOISE_SEVERE_MV:g} mV); `acceptable` for "
        "any other finding; `good` for none. A record read in several windows takes the "
        f"worst window's verdict. Default `--min-leads`: {C.MIN_LEADS}.",
    ])


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="PTB-XL folder")
    parser.add_argument("--doc", type=Path, default=None, help="Markdown file to update")
    parser.add_argument("--step", type=int, default=1, help="every k-th record (quick runs)")
    parser.add_argument("--table-only", action="store_true",
                        help="only rewrite the doc's table of checks (no data needed)")
    args = parser.parse_args(argv)
    if args.table_only:
        if args.doc:
            replace_block(args.doc, "checks-table", checks_table())
        print(checks_table())
        return 0
    from ecgreport.records.read import read_record

    started = time.perf_counter()
    with open(args.data / "ptbxl_database.csv", newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["ecg_id"]))[::args.step]
    fold = np.array([int(r["strat_fold"]) for r in rows])
    labels = {c: np.array([bool(r[c].strip(" ,")) for r in rows]) for c in COLUMNS}
    feats, found, verdicts, residuals, signals10, lead_hits = [], [], [], [], [], []
    for r in rows:
        rec = read_record(args.data / (r["filename_lr"] + ".hea"))
        rows_used = np.flatnonzero(rec.lead_mask)
        f = C.lead_features(rec.signal_mv, rec.fs_hz, rows_used)
        feats.append(record_features(f))
        res = C.check_signal(rec.signal_mv, rec.fs_hz, rec.lead_mask, rec.derived_leads)
        found.append(set(res.codes))
        lead_hits.append({f.check: set(f.leads) for f in res.findings})
        verdicts.append(res.verdict)
        if rec.lead_mask[:6].all() and not rec.derived_leads:
            limb = f.y[:6].astype(np.float64)  # rows_used starts with the six limb leads
            limb -= limb.mean(axis=1, keepdims=True)
            scale = max(float(limb.std(axis=1).mean()), 1e-3)
            residuals.append(max(C._residuals(limb, set(range(6)), scale).values()))
        if int(r["strat_fold"]) == 10 and rec.signal_mv.shape[1] == 1000 and rec.lead_mask.all():
            signals10.append(rec.signal_mv)
    print(f"checked {len(rows)} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    values = {k: np.array([f[k] for f in feats]) for k in feats[0]}
    tune, test = fold <= 9, fold == 10

    # 1. thresholds
    used = {"drift": C.DRIFT_MV, "noise": C.NOISE_MV, "burst_ratio": C.BURST_RATIO,
            "flat_share": C.LEAD_OFF_FRACTION}
    out = [f"Thresholds: the feature (largest over the leads) at {SPECIFICITY:.1%} specificity "
           "on the label-negative records of folds 1-9, and the value the module uses.", "",
           "| PTB-XL column | feature | records labelled (folds 1-9) | value at "
           f"{SPECIFICITY:.1%} specificity | module constant |", "|---|---|---:|---:|---:|"]
    for column, (code, feature) in COLUMNS.items():
        y = labels[column][tune]
        neg = values[feature][tune][~y]
        out.append(f"| `{column}` | {feature} | {int(y.sum())} of {int(tune.sum())} | "
                   f"{np.quantile(neg, SPECIFICITY):.3f} | {used[feature]:g} |")

    # 2. agreement on fold 10
    out += ["", f"Agreement on fold 10 ({int(test.sum())} records; a record is positive when "
            "the column is filled, whatever leads it names):", "",
            "| PTB-XL column | check | labelled | sensitivity | specificity | PPV | "
            "AUC of the feature |", "|---|---|---:|---:|---:|---:|---:|"]
    for column, (code, feature) in COLUMNS.items():
        y = labels[column][test]
        hit = np.array([code in s for s, t in zip(found, test) if t])
        tp, fp = int((hit & y).sum()), int((hit & ~y).sum())
        sens = tp / max(int(y.sum()), 1)
        spec = 1 - fp / max(int((~y).sum()), 1)
        ppv = f"{tp / (tp + fp):.2f}" if tp + fp else "n/a"
        out.append(f"| `{column}` | `{code}` | {int(y.sum())} | {sens:.2f} | {spec:.3f} | "
                   f"{ppv} | {auc(y, values[feature][test]):.3f} |")
    # Per lead: (record, lead) pairs of fold 10, positive when the column names the lead;
    # records whose comment names no lead are left out.
    out += ["", "Per lead on fold 10: each (record, lead) pair, positive when the column "
            "names the lead (\"alles\": all twelve; records whose comment names no lead are "
            "left out):", "", "| PTB-XL column | check | leads labelled | sensitivity | "
            "specificity | PPV |", "|---|---|---:|---:|---:|---:|"]
    for column, (code, _) in COLUMNS.items():
        tp = fp = fn = tn = 0
        for r, hits, t in zip(rows, lead_hits, test):
            if not t:
                continue
            text = r[column].strip(" ,")
            named = column_leads(text) if text else set()
            if named is None:
                continue
            flagged = hits.get(code, set())
            for lead in STANDARD_LEADS:
                pos, hit = lead in named, lead in flagged
                tp += pos and hit
                fn += pos and not hit
                fp += hit and not pos
                tn += not pos and not hit
        ppv = f"{tp / (tp + fp):.2f}" if tp + fp else "n/a"
        out.append(f"| `{column}` | `{code}` | {tp + fn} | {tp / max(tp + fn, 1):.2f} | "
                   f"{tn / max(tn + fp, 1):.3f} | {ppv} |")
    any_label = np.any([labels[c] for c in COLUMNS], axis=0)[test]
    v10 = np.array(verdicts)[test]
    out += ["", "Verdicts on fold 10 against PTB-XL's quality columns (any of the four filled):",
            "", "| verdict | records | of them with a quality label | share labelled |",
            "|---|---:|---:|---:|"]
    for v in C.VERDICTS:
        n = int((v10 == v).sum())
        k = int(((v10 == v) & any_label).sum())
        out.append(f"| {v} | {n} | {k} | {k / n if n else 0:.2f} |")

    # 3. consistency and alterations
    res = np.array(residuals)
    inconsistent = sum("limb_leads_inconsistent" in s for s in found)
    out += ["", f"Limb-lead identities on the {len(res)} PTB-XL records with six limb leads: largest relative "
            f"residual per record, median {np.median(res):.4f}, 99.9th percentile "
            f"{np.quantile(res, 0.999):.4f}, maximum {res.max():.4f}; tolerance "
            f"{C.CONSISTENCY_TOL:g} ({int((res > C.CONSISTENCY_TOL).sum())} records above it; "
            f"the check fires on {inconsistent} of all {len(rows)} records).",
            "", f"Made to fail: each fold-10 record ({len(signals10)} complete 10 s records) "
            "altered; the share where the check fires, and where it fires on the unaltered "
            "records (false alarms). Noise and drift are added to I, II and V1-V6 and the "
            "other limb leads derived again, as at a recorder's electrodes.", "",
            "| alteration | check | fires on altered | fires on unaltered | verdict unreadable "
            "(altered) |", "|---|---|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    mask = np.ones(12, bool)
    base = [C.check_signal(x, 100.0, mask) for x in signals10]
    for name, code, alter in alterations(rng):
        altered = [C.check_signal(alter(x), 100.0, mask) for x in signals10]
        fires = np.mean([code in a.codes for a in altered])
        false = np.mean([code in b.codes for b in base])
        unread = np.mean([a.verdict == C.UNREADABLE for a in altered])
        out.append(f"| {name} | `{code}` | {fires:.3f} | {false:.3f} | {unread:.3f} |")
    causes = [a.warnings[0] for a in (C.check_signal(swap_i_ii(x), 100.0, mask)
                                      for x in signals10) if a.warnings]
    named = np.mean(["leads I and II look swapped" in w for w in causes]) if causes else 0
    out += ["", f"I and II swapped: the cause named is \"leads I and II look swapped\" in "
            f"{named:.1%} of the records where the check fires."]

    # 4. speed
    from scipy.signal import resample_poly

    sample = signals10[:500]
    hi = [resample_poly(x, 5, 1, axis=1).astype(np.float32) for x in sample]
    timing = {}
    for label, xs, fs in (("100 Hz", sample, 100.0), ("500 Hz", hi, 500.0)):
        runs = []
        for _ in range(5):
            t0 = time.process_time()  # CPU time: the machine is shared, wall time is not ours
            for x in xs:
                C.check_signal(x, fs, mask)
            runs.append((time.process_time() - t0) / len(xs) * 1000)
        timing[label] = min(runs)
    import wfdb

    paths = [str(args.data / r["filename_lr"]) for r in rows if int(r["strat_fold"]) == 10][:500]
    t0 = time.process_time()
    for p in paths:
        wfdb.rdsamp(p)
    rdsamp_ms = (time.process_time() - t0) / len(paths) * 1000
    out += ["", "Speed (CPU time of this process, best of 5 passes over 500 fold-10 records, "
            "12 leads x 10 s; 500 Hz: the same records resampled; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end):", "",
            "| | ms per record |", "|---|---:|",
            f"| `check_signal`, 100 Hz | {timing['100 Hz']:.3f} |",
            f"| `check_signal`, 500 Hz | {timing['500 Hz']:.3f} |",
            f"| `wfdb.rdsamp` of the same 100 Hz records (one pass, for scale) | {rdsamp_ms:.2f} |"]
    head = (f"Command: `python scripts/signal_checks_ptbxl.py {' '.join(argv or sys.argv[1:])}` "
            f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{time.perf_counter() - started:.0f} s). PTB-XL (Wagner et al. 2020), 100 Hz records.")
    text = head + "\n\n" + "\n".join(out)
    if args.doc:
        replace_block(args.doc, "signal-checks-ptbxl", text)
        replace_block(args.doc, "checks-table", checks_table())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
