"""The 12-lead picture (ecgreport.outputs.picture): scale, layout, labels, header, speed."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ecgreport.leads import STANDARD_LEADS
from ecgreport.outputs.picture import (COLUMN_S, MM_PER_MV, MM_PER_S, UNITS_PER_MM,
                                       header_from_entry, render_svg)

SVG = "{http://www.w3.org/2000/svg}"


def path_points(d: str) -> np.ndarray:
    """Absolute (x, y) of a trace path ``M x y l dx dy dx dy ...``, in the path's units."""
    m = re.fullmatch(r"M(-?\d+) (-?\d+)l(.*)", d)
    assert m, d
    steps = np.array(m.group(3).split(), dtype=np.int64).reshape(-1, 2)
    start = np.array([[int(m.group(1)), int(m.group(2))]])
    return np.cumsum(np.concatenate([start, steps]), axis=0)


def traces(svg: str) -> dict[str, list[np.ndarray]]:
    """Each lead's trace(s) as (n, 2) points in mm, in drawing order."""
    root = ET.fromstring(svg)
    out: dict[str, list[np.ndarray]] = {}
    for p in root.iter(f"{SVG}path"):
        if p.get("class") == "trace":
            out.setdefault(p.get("data-lead"), []).append(path_points(p.get("d")) / UNITS_PER_MM)
    return out


def square_pulse(fs_hz: float, n_s: float = 10.0, at_s: float = 1.0, width_s: float = 0.2,
                 mv: float = 1.0) -> np.ndarray:
    """12 leads of zeros with a ``mv`` mV, ``width_s`` s square pulse in every lead."""
    signal = np.zeros((12, int(round(n_s * fs_hz))))
    start = int(round(at_s * fs_hz))
    signal[:, start:start + int(round(width_s * fs_hz))] = mv
    return signal


@pytest.mark.parametrize("fs_hz", [100.0, 250.0, 500.0, 1000.0])
def test_a_1_mv_200_ms_pulse_spans_10_mm_by_5_mm(fs_hz):
    svg = render_svg(square_pulse(fs_hz), fs_hz, STANDARD_LEADS, {"record_id": "pulse"})
    rhythm = traces(svg)["II"][-1]           # the 10 s strip: lead II's last trace
    y = rhythm[:, 1]
    baseline, top = y.max(), y.min()         # y grows downwards
    assert baseline - top == pytest.approx(10.0, abs=0.01)   # 1 mV -> 10 mm
    high = np.flatnonzero(np.isclose(y, top))
    back = high[-1] + 1                      # the first sample back at 0 mV
    assert rhythm[back, 0] - rhythm[high[0], 0] == pytest.approx(5.0, abs=0.01)  # 0.2 s -> 5 mm
    assert rhythm[-1, 0] - rhythm[0, 0] == pytest.approx((len(y) - 1) / fs_hz * MM_PER_S, abs=0.01)


def test_grid_is_1_mm_minor_5_mm_major_and_the_page_prints_at_true_size():
    svg = render_svg(square_pulse(100.0), 100.0, STANDARD_LEADS, {"record_id": "x"})
    root = ET.fromstring(svg)
    _, _, vb_w, vb_h = map(float, root.get("viewBox").split())
    assert root.get("width") == f"{vb_w:g}mm" and root.get("height") == f"{vb_h:g}mm"
    pattern = root.find(f".//{SVG}pattern")
    assert (pattern.get("width"), pattern.get("height")) == ("5", "5")  # one major square
    lines = {p.get("class"): p.get("d") for p in pattern.iter(f"{SVG}path")}
    assert re.findall(r"M(\d) 0V5", lines["grid-minor"]) == ["1", "2", "3", "4"]
    assert re.findall(r"M0 (\d)H5", lines["grid-minor"]) == ["1", "2", "3", "4"]
    assert lines["grid-major"] == "M0 0V5M0 0H5"
    # The calibration pulse of each of the four rows: 10 mm (1 mV) tall, 5 mm (0.2 s) wide.
    cal = [p.get("d") for p in root.iter(f"{SVG}path") if p.get("class") == "cal" and "h5" in p.get("d")]
    assert len(cal) == 4 and all(f"v{-MM_PER_MV:g}h5v{MM_PER_MV:g}" in d for d in cal)


def test_layout_columns_of_2_5_s_and_a_10_s_rhythm_strip():
    fs = 500.0
    svg = render_svg(square_pulse(fs), fs, STANDARD_LEADS, {"record_id": "x"})
    drawn = traces(svg)
    assert sorted(drawn) == sorted(STANDARD_LEADS)
    assert len(drawn["II"]) == 2 and all(len(v) == 1 for k, v in drawn.items() if k != "II")
    widths = {lead: t[0][-1, 0] - t[0][0, 0] for lead, t in drawn.items()}
    col_mm = (COLUMN_S * fs - 1) / fs * MM_PER_S
    assert all(w == pytest.approx(col_mm, abs=0.01) for w in widths.values())
    starts = {lead: round(t[0][0, 0], 2) for lead, t in drawn.items()}
    for column in (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6")):
        assert len({starts[lead] for lead in column}) == 1       # one column, one start
    assert starts["aVR"] - starts["I"] == pytest.approx(COLUMN_S * MM_PER_S)
    assert drawn["II"][1][-1, 0] - drawn["II"][1][0, 0] == pytest.approx((10 * fs - 1) / fs * MM_PER_S)
    # The four columns show consecutive quarters: the pulse at 1 s is in column 1 only.
    assert np.ptp(drawn["I"][0][:, 1]) == pytest.approx(10.0)
    assert np.ptp(drawn["aVR"][0][:, 1]) == 0


def test_leads_by_name_missing_and_derived_leads_are_labelled():
    order = ["V6", "I", "aVF", "II", "III", "aVL", "aVR", "V1", "V2", "V3", "V4", "V5"]
    signal = np.zeros((12, 1000))
    signal[order.index("V6"), 800:820] = 2.0  # at 8 s: in the last column
    svg = render_svg(signal, 100.0, order, {"record_id": "x"}, missing_leads=["V3"],
                     derived_leads=["III"])
    root = ET.fromstring(svg)
    names = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "lead-name"]
    assert sorted(names) == sorted(STANDARD_LEADS)
    notes = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "lead-note"]
    assert notes == ["(derived)", "(missing)"]
    drawn = traces(svg)
    assert "V3" not in drawn and np.ptp(drawn["V6"][0][:, 1]) == pytest.approx(20.0)
    # A lead absent from the names is missing too.
    svg = render_svg(np.zeros((2, 1000)), 100.0, ["I", "II"], {"record_id": "x"})
    assert svg.count("(missing)") == 10


def test_header_shows_what_is_given_and_escapes_it():
    entry = {"record_id": "a/<b>&c", "duration_s": 30.0, "report_window_start_s": 10.0,
             "report": "sinus rhythm <normal>", "warnings": ["dropped non-standard leads: RESP"],
             "top_findings": [{"label": "NORM", "set": "superclass", "similarity": 0.41}]}
    svg = render_svg(np.zeros((12, 1000)), 100.0, STANDARD_LEADS, header_from_entry(entry),
                     {"heart_rate_bpm": 72.0, "qrs_ms": 94.0, "qtc_bazett_ms": None})
    text = " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))
    for part in ("a/<b>&c", "100 Hz", "Rate 72 bpm", "QRS 94 ms", "sinus rhythm <normal>",
                 "NORM (superclass) 0.41", "dropped non-standard leads: RESP",
                 "10-20 s of the record shown (the window the report was written from)"):
        assert part in text
    assert "QTc" not in text and "PR" not in text  # absent measurements are left out


def test_short_records_nan_and_huge_values_do_not_break_it():
    signal = np.zeros((12, 300))               # 3 s: only the first two columns have data
    signal[0, 5] = np.nan
    signal[1, 10] = 1e6
    svg = render_svg(signal, 100.0, STANDARD_LEADS, {"record_id": "short"})
    drawn = traces(svg)
    assert "V1" not in drawn and "I" in drawn and "aVR" in drawn
    assert np.isfinite(drawn["I"][0]).all() and np.ptp(drawn["II"][0][:, 1]) <= 101
    with pytest.raises(ValueError, match="one row per lead name"):
        render_svg(np.zeros((11, 100)), 100.0, STANDARD_LEADS, {})


def test_rendering_costs_about_a_millisecond_at_100_hz():
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.3, (12, 1000))
    header = {"record_id": "x", "report": "sinus rhythm. normal ecg.", "top_findings": ["NORM 0.4"]}
    render_svg(signal, 100.0, STANDARD_LEADS, header)
    times = []
    for _ in range(30):
        started = time.perf_counter()
        render_svg(signal, 100.0, STANDARD_LEADS, header)
        times.append(time.perf_counter() - started)
    # ~0.6 ms on the 2-core test machine; the bound leaves room for a loaded machine.
    assert np.median(times) < 0.010
