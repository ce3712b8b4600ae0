"""The measurements of one batch record: what the pipeline calls, and how the report shows them.

:func:`record_measurements` runs in :func:`ecgreport.pipeline.record_fields` on the record's
own signal; :func:`report_checks` runs once the report is written;
:func:`measurement_lines` is the block at the top of ``reports/<record>.txt``. The CSV
columns are :data:`ecgreport.measure.MEASUREMENT_KEYS` (``ecgreport.outputs.writers``
writes ``measurements.csv``).
"""

from __future__ import annotations

import logging

import numpy as np

from ecgreport.leads import STANDARD_LEADS
from ecgreport.measure.contradictions import check_report
from ecgreport.measure.intervals import MEASUREMENT_KEYS, empty_measurements, measure_ecg

logger = logging.getLogger(__name__)


def record_measurements(spans_mv: list[np.ndarray], fs_hz: float, lead_mask: np.ndarray) -> dict:
    """``{"measurements": {...}}`` for a record read as ``spans_mv`` (one
    ``(12, n_samples)`` mV array per planned window, leads in STANDARD_LEADS order).

    The first span is measured (a 10 s ECG is one span; a long recording is measured on
    its first window, ``window_s`` seconds)."""
    try:
        return {"measurements": measure_ecg(spans_mv[0], fs_hz, STANDARD_LEADS, lead_mask)}
    except Exception as err:  # a measurement never fails the record: its reason is kept
        logger.debug("measurement failed", exc_info=True)
        return {"measurements": empty_measurements(
            f"measurement failed: {type(err).__name__}: {err}")}


def report_checks(entry: dict) -> dict:
    """``{"report_checked": text, "measurement_flags": [message, ...]}`` for a finished
    entry: its report corrected where the measurements contradict it (see
    :mod:`ecgreport.measure.contradictions`), and what was corrected or flagged."""
    m = entry.get("measurements")
    if not m or not entry.get("report"):
        return {"report_checked": entry.get("report"), "measurement_flags": []}
    result = check_report(entry["report"], m)
    flags = [f["message"] + (": corrected" if f["action"] == "corrected" else "")
             for f in result["flags"]]
    checked = result["text"] if any(f["action"] == "corrected" for f in result["flags"]) \
        else entry["report"]
    return {"report_checked": checked, "measurement_flags": flags}


def _v(value, unit: str = "") -> str:
    return "--" if value is None else f"{value}{unit}"


def measurement_lines(entry: dict) -> list[str]:
    """The report's measurements block, in a printed ECG's order and units: rate, PR, QRS,
    QT/QTc, P-R-T axes; then what could not be measured, and why."""
    m = entry.get("measurements")
    if not m:
        return []
    # Keys absent (an entry written by another tool or version) read as not measured.
    m = {key: m.get(key) for key in MEASUREMENT_KEYS} | {"reasons": m.get("reasons") or {}}
    rhythm = {True: ", irregular", False: ", regular", None: ""}[m["rr_irregular"]]
    lines = [
        "Measurements (global, from the median beat; check them against the tracing):",
        f"  Vent. rate      {_v(m['heart_rate_bpm'], ' /min')}"
        + (f"  (RR {m['rr_ms']} ms{rhythm})" if m["rr_ms"] is not None else ""),
        f"  PR interval     {_v(m['pr_ms'], ' ms')}",
        f"  P duration      {_v(m['p_ms'], ' ms')}",
        f"  QRS duration    {_v(m['qrs_ms'], ' ms')}",
        f"  QT/QTc          {_v(m['qt_ms'])}/{_v(m['qtc_bazett_ms'])} ms (Bazett), "
        f"QTcF {_v(m['qtc_fridericia_ms'], ' ms')}",
        f"  P-R-T axes      {_v(m['p_axis_deg'])} {_v(m['qrs_axis_deg'])} {_v(m['t_axis_deg'])} (deg)",
    ]
    reasons: dict[str, list[str]] = {}
    for key, why in m.get("reasons", {}).items():
        reasons.setdefault(why, []).append(key)
    for why, keys in reasons.items():
        lines.append(f"  not measured: {', '.join(keys)}: {why}")
    return lines


def csv_values(entry: dict) -> list[str]:
    """The measurement columns of one entry (empty where not measured or failed)."""
    m = entry.get("measurements") or {}
    out = []
    for key in MEASUREMENT_KEYS:
        value = m.get(key)
        out.append("" if value is None else str(value).lower() if isinstance(value, bool)
                   else str(value))
    reasons = m.get("reasons") or {}
    out.append("; ".join(f"{k}: {v}" for k, v in reasons.items()))
    return out
