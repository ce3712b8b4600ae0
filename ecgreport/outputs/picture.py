"""A 12-lead ECG drawn as a printed ECG is: SVG, 25 mm/s, 10 mm/mV, on millimetre paper.

Layout (all sizes in mm, the SVG's user unit; the file says ``width="...mm"`` so that it
prints at true scale)::

    header: record id, rate, measurements, report, top findings, warnings
    +-----------------------------------------------------------------+
    | cal | I        | aVR      | V1       | V4       |   row 1
    | cal | II       | aVL      | V2       | V5       |   row 2
    | cal | III      | aVF      | V3       | V6       |   row 3
    | cal | II (rhythm strip, the full 10 s)          |   row 4
    +-----------------------------------------------------------------+
    footer: 25 mm/s, 10 mm/mV, what was drawn; the disclaimer (the SVG may travel alone)

Each column shows 2.5 s, the four columns the consecutive quarters of the same 10 s (as
a 12-lead machine prints them); the rhythm strip shows all 10 s of lead II. Each row
starts with a 1 mV, 0.2 s calibration pulse (10 mm tall, 5 mm wide). The grid is an SVG
``<pattern>``: 1 mm minor and 5 mm major lines. A missing lead is a label saying so and
no trace; a derived lead (computed from others, e.g. III = II - I) is labelled so.

The signal drawn is the one given (the record's own rate and mV), offset by each lead's
median over the drawn window so traces sit on their row's baseline; amplitudes are not
changed. Traces are not clipped: a tall QRS runs into the next row, as on paper.

Why SVG: vector lines stay sharp at any zoom and in print, a 10 s 100 Hz record is
~40 kB of text, and writing it is string formatting (about a millisecond per record)
where a raster or PDF library costs tens of milliseconds. Speed comes from integer
coordinates in units of 0.01 mm (1 µV vertically) joined once per lead, and relative
path steps, which keep the numbers short.

>>> svg = render_svg(np.zeros((12, 1000)), 100.0, STANDARD_LEADS, {"record_id": "r1"})
>>> svg.startswith("<svg") and svg.count('class="lead-name"')
12
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence

import numpy as np

from ecgreport import DISCLAIMER
from ecgreport.leads import STANDARD_LEADS

MM_PER_S = 25.0
MM_PER_MV = 10.0
UNITS_PER_MM = 100          # path coordinates are integers in 0.01 mm (1 µV at 10 mm/mV)
COLUMN_S = 2.5
STRIP_S = 10.0
COLUMNS = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))
RHYTHM_LEAD = "II"

CAL_W = 10.0                # left margin holding the calibration pulse
ROW_H = 30.0                # distance between baselines
GRID_W = CAL_W + STRIP_S * MM_PER_S          # 260 mm
GRID_H = 4 * ROW_H + 5.0                      # 125 mm
MARGIN = 5.0
LINE_H = 4.0                # header line height
FONT = 2.9                  # header font size (mm), ~8 pt
WRAP = 175                  # characters per header line
PAPER_W = GRID_W + 2 * MARGIN

MEASUREMENTS = (            # (key, label, unit) in the order printed
    ("heart_rate_bpm", "Rate", "bpm"), ("pr_ms", "PR", "ms"), ("qrs_ms", "QRS", "ms"),
    ("qt_ms", "QT", "ms"), ("qtc_bazett_ms", "QTc (Bazett)", "ms"),
    ("qtc_fridericia_ms", "QTcF", "ms"), ("p_axis_deg", "P axis", "°"),
    ("qrs_axis_deg", "QRS axis", "°"), ("t_axis_deg", "T axis", "°"))

_STYLE = (
    "<style>"
    ".grid-minor{stroke:#f3c1c1;stroke-width:0.1}"
    ".grid-major{stroke:#e08080;stroke-width:0.2}"
    ".trace{fill:none;stroke:#000;stroke-width:30;stroke-linejoin:round}"  # in 0.01 mm
    ".cal{fill:none;stroke:#000;stroke-width:0.3}"
    "text{font-family:Helvetica,Arial,sans-serif;fill:#000}"
    ".lead-name{font-size:3.5px;font-weight:bold}"
    ".lead-note{font-size:2.8px;fill:#a00000}"
    ".head{font-size:%.1fpx}.head-b{font-size:%.1fpx;font-weight:bold}"
    ".warn{font-size:%.1fpx;fill:#a00000}"
    "</style>" % (FONT, FONT + 0.6, FONT))

_PATTERN = (
    '<pattern id="ecg-grid" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<path class="grid-minor" d="M1 0V5M2 0V5M3 0V5M4 0V5M0 1H5M0 2H5M0 3H5M0 4H5"/>'
    '<path class="grid-major" d="M0 0V5M0 0H5"/></pattern>')


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value) -> str:
    """A measurement as printed: whole numbers without decimals."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:.0f}" if isinstance(value, float) else str(value)


@functools.lru_cache(maxsize=1)
def _int_strings() -> np.ndarray:
    """``str(i)`` for every ``i`` in ``[-_TABLE_HALF, _TABLE_HALF)``, as an object array:
    looking the path's numbers up is ~6x faster than ``map(str, ...)``."""
    return np.array([str(i) for i in range(-_TABLE_HALF, _TABLE_HALF)], dtype=object)


@functools.lru_cache(maxsize=8)
def _pair_strings(dx: int) -> np.ndarray:
    """``f"{dx} {dy}"`` for every ``dy`` in ``[-_TABLE_HALF, _TABLE_HALF)``: one lookup per
    step when the sampling rate makes every x step the same."""
    return np.array([f"{dx} {i}" for i in range(-_TABLE_HALF, _TABLE_HALF)], dtype=object)


_TABLE_HALF = 1 << 15       # steps up to 327 mm
CLIP_MV = 10.0              # samples beyond +-10 mV (100 mm) of the baseline are drawn at it


class _Grid:
    """A window of leads as integer path units, computed once for all its traces:
    ``dy`` (n_leads, n - 1) the steps between samples (mV offset by each lead's median,
    clipped at +-CLIP_MV, NaN as 0), ``y`` (n_leads, n) the samples' heights relative to
    the baseline, ``dx`` (n - 1,) the steps along time. Rounding x from the window's start
    keeps every column on the same sample grid."""

    def __init__(self, signal_mv: np.ndarray, fs_hz: float, offsets_mv: np.ndarray):
        n = signal_mv.shape[1]
        mv = np.clip(np.nan_to_num(signal_mv) - offsets_mv[:, None], -CLIP_MV, CLIP_MV)
        self.y = np.rint(-mv * (MM_PER_MV * UNITS_PER_MM)).astype(np.int64)
        self.dy = np.diff(self.y, axis=1)
        self.dx = np.diff(np.rint(np.arange(n) * (MM_PER_S / fs_hz * UNITS_PER_MM)).astype(np.int64))
        # Clipping bounds |dy| by 2 * CLIP_MV (20,000 units); dx only a rate below
        # ~0.1 Hz could push past the table.
        self.use_table = n < 2 or int(self.dx.max()) < _TABLE_HALF
        # At 100, 250 or 500 Hz every dx is the same: then one "dx dy" string per step.
        self.pairs = (_pair_strings(int(self.dx[0])) if n >= 2 and self.use_table
                      and int(self.dx.min()) == int(self.dx.max()) else None)

    def path(self, row: int, start: int, stop: int, x0_mm: float, baseline_mm: float) -> str:
        """Path data of samples ``[start, stop)`` of lead ``row``, the first at ``x0_mm``."""
        x0 = int(round(x0_mm * UNITS_PER_MM))
        y0 = int(round(baseline_mm * UNITS_PER_MM)) + int(self.y[row, start])
        m = stop - start
        if m <= 1:
            return f"M{x0} {y0}h1"
        if self.pairs is not None:
            return f"M{x0} {y0}l" + " ".join(
                self.pairs[self.dy[row, start:stop - 1] + _TABLE_HALF].tolist())
        steps = np.empty((m - 1, 2), dtype=np.int64)
        steps[:, 0] = self.dx[:m - 1]
        steps[:, 1] = self.dy[row, start:stop - 1]
        flat = steps.ravel()
        if self.use_table:
            numbers = _int_strings()[flat + _TABLE_HALF].tolist()
        else:  # a rate below ~0.1 Hz: not worth a table
            numbers = map(str, flat.tolist())
        return f"M{x0} {y0}l" + " ".join(numbers)


def trace_path(signal_mv: np.ndarray, fs_hz: float, x0_mm: float, baseline_mm: float) -> str:
    """The SVG path data of one lead: ``signal_mv`` (n_samples,) in mV at ``fs_hz``, its
    first sample at ``x0_mm``, 0 mV at ``baseline_mm`` (y grows downwards). Coordinates
    are integers in 0.01 mm, each step relative to the last (draw it inside
    ``scale(0.01)``); NaN samples are drawn as 0 mV, values beyond +-CLIP_MV at that limit.

    >>> trace_path(np.array([0.0, 1.0, 1.0]), 100.0, 0.0, 10.0)
    'M0 1000l25 -1000 25 0'
    """
    if len(signal_mv) == 0:
        return ""
    signal = np.asarray(signal_mv, dtype=np.float64)[None, :]
    return _Grid(signal, fs_hz, np.zeros(1)).path(0, 0, signal.shape[1], x0_mm, baseline_mm)


def _wrap(text: str, width: int = WRAP, max_lines: int = 4) -> list[str]:
    """Greedy word wrap (``textwrap`` costs more than drawing a lead); a word longer than
    ``width`` is cut. The last kept line ends in "…" when lines were dropped.

    >>> _wrap("aa bb cc", 5)
    ['aa bb', 'cc']
    """
    lines, line = [], ""
    for word in text.split():
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def measurement_text(measurements: dict | None) -> str:
    """``"Rate 72 bpm · PR 160 ms · ..."`` for the keys present (not None), else ``""``."""
    if not measurements:
        return ""
    parts = []
    for key, label, unit in MEASUREMENTS:
        value = measurements.get(key)
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            continue
        parts.append(f"{label} {_fmt(value)}{'' if unit == '°' else ' '}{unit}")
    return " · ".join(parts)


def _header_lines(header: dict, fs_hz: float, measurements: dict | None) -> list[tuple[str, str]]:
    """(css class, text) per header line."""
    first = f"{header.get('record_id', '')}"
    facts = [f"{fs_hz:g} Hz"]
    if header.get("duration_s") is not None:
        facts.append(f"{header['duration_s']:g} s recorded")
    lines = [("head-b", f"{first}   ({', '.join(facts)})")]
    text = measurement_text(measurements)
    if text:
        lines.append(("head", text))
    if header.get("report"):
        lines += [("head", line) for line in _wrap(f"Report: {header['report']}")]
    findings = header.get("top_findings") or []
    if findings:
        title = header.get("findings_title", "Top findings")
        lines += [("head", line) for line in _wrap(f"{title}: " + "; ".join(findings), max_lines=2)]
    warnings = header.get("warnings") or []
    if warnings:
        lines += [("warn", line) for line in _wrap("Warnings: " + "; ".join(warnings), max_lines=3)]
    if header.get("error"):
        lines += [("warn", line) for line in _wrap(f"Failed: {header['error']}", max_lines=3)]
    return lines


def render_svg(signal_mv: np.ndarray, fs_hz: float, lead_names: Sequence[str], header: dict,
               measurements: dict | None = None, missing_leads: Sequence[str] = (),
               derived_leads: Sequence[str] = ()) -> str:
    """The printed-ECG picture of one record as an SVG document (a string).

    ``signal_mv``: (n_leads, n_samples) in mV at ``fs_hz`` (the record's own rate), rows
    named by ``lead_names`` (any order; the 12 standard names are looked up, others are
    ignored). Only the first 10 s are drawn: pass the window to show (for a long record,
    the one the report was written from) and its offset as ``header["start_s"]``.
    ``header``: ``record_id``, and optionally ``duration_s``, ``start_s``, ``long`` (the
    record is longer than what is drawn: say it is the report's window), ``report``,
    ``top_findings`` (list of str), ``warnings`` (list of str), ``error``.
    ``measurements``: keys of :data:`MEASUREMENTS` (``heart_rate_bpm``, ``qrs_ms``, ...);
    absent or None values are left out. ``missing_leads`` are labelled "missing" and not
    drawn; ``derived_leads`` are drawn and labelled "derived".
    """
    signal_mv = np.nan_to_num(np.asarray(signal_mv, dtype=np.float64))
    if signal_mv.ndim != 2 or signal_mv.shape[0] != len(lead_names):
        raise ValueError(f"signal_mv must be (n_leads, n_samples) with one row per lead name, "
                         f"got {signal_mv.shape} for {len(lead_names)} names")
    if not fs_hz > 0:
        raise ValueError(f"fs_hz must be positive, got {fs_hz}")
    n_draw = min(signal_mv.shape[1], int(round(STRIP_S * fs_hz)))
    rows = {name: i for i, name in enumerate(lead_names)}
    missing, derived = set(missing_leads), set(derived_leads)
    per_column = int(round(COLUMN_S * fs_hz))

    head = _header_lines(header, fs_hz, measurements)
    top = MARGIN + len(head) * LINE_H + 2.0          # the grid's top edge
    height = top + GRID_H + 12.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ecg" width="{PAPER_W:g}mm" '
           f'height="{height:g}mm" viewBox="0 0 {PAPER_W:g} {height:g}" role="img" '
           f'aria-label="12-lead ECG of {_esc(header.get("record_id", ""))}">',
           f"<defs>{_STYLE}{_PATTERN}</defs>",
           f'<rect width="{PAPER_W:g}" height="{height:g}" fill="#fff"/>']
    for i, (css, text) in enumerate(head):
        out.append(f'<text class="{css}" x="{MARGIN:g}" y="{MARGIN + (i + 0.75) * LINE_H:g}">'
                   f"{_esc(text)}</text>")
    out.append(f'<g transform="translate({MARGIN:g} {top:g})">'
               f'<rect class="paper" width="{GRID_W:g}" height="{GRID_H:g}" fill="url(#ecg-grid)"/>'
               f'<rect width="{GRID_W:g}" height="{GRID_H:g}" fill="none" stroke="#e08080" stroke-width="0.3"/>')

    paths, traces, labels = [], [], []
    baselines = [ROW_H * (r + 0.6) for r in range(4)]
    for base in baselines:  # 1 mV calibration pulse: 0.2 s wide, 10 mm tall
        x = 2.0
        paths.append(f'<path class="cal" d="M{x:g} {base:g}h1.5v{-MM_PER_MV:g}'
                     f'h{0.2 * MM_PER_S:g}v{MM_PER_MV:g}h1.5"/>')

    # One offset per lead, over the whole drawn window, so a lead's column and the
    # rhythm strip share their baseline.
    # The median of at most ~250 samples a lead: as good a baseline, at a quarter the cost.
    window = signal_mv[:, :n_draw]
    step = max(1, n_draw // 250)
    grid = _Grid(window, fs_hz, np.median(window[:, ::step], axis=1)) if n_draw else None

    def lead(name: str, start: int, stop: int, x0: float, base: float,
             css: str = "lead-name") -> None:
        label_x, label_y = x0 + 1.0, base - ROW_H * 0.45
        note = ""
        if name not in rows or name in missing:
            note = "missing"
        elif name in derived:
            note = "derived"
        labels.append(f'<text class="{css}" x="{label_x:g}" y="{label_y:g}">{name}</text>')
        if note:
            labels.append(f'<text class="lead-note" x="{label_x + 1.2 + 2.4 * len(name):g}" '
                          f'y="{label_y:g}">({note})</text>')
        if note == "missing":
            return
        if stop <= start or start >= n_draw:
            return
        traces.append(f'<path class="trace" data-lead="{name}" d="'
                      f'{grid.path(rows[name], start, stop, x0, base)}"/>')

    for c, names in enumerate(COLUMNS):
        x0 = CAL_W + c * COLUMN_S * MM_PER_S
        start, stop = c * per_column, min((c + 1) * per_column, n_draw)
        if c:  # a short tick where one column gives way to the next, as printers mark it
            for r in range(3):
                paths.append(f'<path class="cal" d="M{x0:g} {baselines[r] - 2:g}v4"/>')
        for r, name in enumerate(names):
            lead(name, start, stop, x0, baselines[r])
    lead(RHYTHM_LEAD, 0, n_draw, CAL_W, baselines[3], css="lead-name rhythm")

    out += paths
    # Traces are integer paths in 0.01 mm: one scaled group holds them all.
    out.append(f'<g transform="scale({1 / UNITS_PER_MM:g})">')
    out += traces
    out.append("</g>")
    out += labels
    out.append("</g>")
    start_s = float(header.get("start_s") or 0.0)
    shown = n_draw / fs_hz
    foot = (f"{MM_PER_S:g} mm/s · {MM_PER_MV:g} mm/mV · {fs_hz:g} Hz as recorded · "
            f"{start_s:g}-{start_s + shown:g} s of the record shown"
            + (" (the window the report was written from)" if header.get("long") else ""))
    out.append(f'<text class="head" x="{MARGIN:g}" y="{top + GRID_H + 5:g}">{_esc(foot)}</text>')
    out.append(f'<text class="warn" x="{MARGIN:g}" y="{top + GRID_H + 9:g}">{_esc(DISCLAIMER)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def header_from_entry(entry: dict) -> dict:
    """The picture header of a ``records.jsonl`` entry (see :func:`render_svg`)."""
    present = entry.get("findings_present")  # None: a bundle without thresholds
    if present is not None:
        title = "Findings called present"
        findings = [f"{f['label']} ({f['set']})" for f in present] or ["none"]
    else:
        title = "Top findings"
        findings = [f"{f['label']} ({f['set']}) {f['similarity']:.2f}"
                    for f in entry.get("top_findings") or []]
    return {"findings_title": title, "record_id": entry.get("record_id", ""), "duration_s": entry.get("duration_s"),
            "start_s": entry.get("report_window_start_s") or 0.0,
            "long": (entry.get("duration_s") or 0) > STRIP_S + 1e-6,
            "report": entry.get("report"), "top_findings": findings,
            "warnings": list(entry.get("warnings") or []), "error": entry.get("error")}


__all__ = ["render_svg", "trace_path", "header_from_entry", "measurement_text"]
