"""Measurements on synthetic ECGs with known intervals and axes; reasons for None; the
report-vs-measurement check; the measurements in every batch output."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ecgreport.measure import MEASUREMENT_KEYS, measure_ecg
from ecgreport.measure.contradictions import check_report
from ecgreport.measure.intervals import detect_r_peaks
from ecgreport.measure.record import measurement_lines
from ecgreport.measure.synthetic import synthetic_ecg

# The synthetic waves are raised cosines whose first and last milliseconds are flat, so a
# slope threshold sees them start later and end earlier than their support: the measured
# intervals sit within these tolerances (ms) of the constructed ones, at 100 and 500 Hz.
TOL_MS = {"pr_ms": 25, "qrs_ms": 20, "qt_ms": 50}


@pytest.mark.parametrize("fs", [100, 500])
@pytest.mark.parametrize("rate, pr, qrs, qt", [(70, 0.16, 0.09, 0.40), (48, 0.24, 0.14, 0.46),
                                               (115, 0.13, 0.08, 0.32)])
def test_intervals_and_rate_of_synthetic_ecgs(fs, rate, pr, qrs, qt):
    sig, names = synthetic_ecg(heart_rate=rate, fs_hz=fs, pr_s=pr, qrs_s=qrs, qt_s=qt)
    m = measure_ecg(sig, fs, names)
    assert set(m) == set(MEASUREMENT_KEYS) | {"reasons"}
    assert m["reasons"] == {}
    assert abs(m["heart_rate_bpm"] - rate) <= 1
    assert abs(m["rr_ms"] - 60000 / rate) <= 10
    assert m["rr_irregular"] is False
    for key, want in (("pr_ms", pr), ("qrs_ms", qrs), ("qt_ms", qt)):
        assert abs(m[key] - 1000 * want) <= TOL_MS[key], (key, m[key], want)
    rr_s = 60 / rate
    assert m["qtc_bazett_ms"] == pytest.approx(m["qt_ms"] / np.sqrt(m["rr_ms"] / 1000), abs=2)
    assert m["qtc_fridericia_ms"] == pytest.approx(m["qt_ms"] / np.cbrt(rr_s), abs=3)


@pytest.mark.parametrize("qrs_axis", [-60, -20, 30, 75, 120])
def test_frontal_axes(qrs_axis):
    sig, names = synthetic_ecg(fs_hz=500, qrs_axis_deg=qrs_axis, t_axis_deg=qrs_axis - 10,
                               p_axis_deg=50)
    m = measure_ecg(sig, 500, names)
    assert abs(m["qrs_axis_deg"] - qrs_axis) <= 10
    assert abs(m["t_axis_deg"] - (qrs_axis - 10)) <= 10
    assert abs(m["p_axis_deg"] - 50) <= 10


def test_axis_from_i_and_avf_when_ii_and_iii_are_missing():
    sig, names = synthetic_ecg(fs_hz=500, qrs_axis_deg=-45)
    mask = np.array([n not in ("II", "III") for n in names])
    sig = sig * mask[:, None]
    m = measure_ecg(sig, 500, names, lead_mask=mask)
    assert abs(m["qrs_axis_deg"] + 45) <= 10


@pytest.mark.parametrize("fs", [100, 500])
@pytest.mark.parametrize("rate", [86, 100])
def test_low_t_wave_over_a_depressed_pr_segment_ends_at_the_t_wave(fs, rate):
    """A flat T (0.1 mV) and an atrial repolarization wave that puts the PR segment below
    the TP segment: M's lowest point after T lies in the next PR segment, past the next P
    wave. Searching that far ran the tangent down the next P wave (QT 545-655 ms for 360,
    and no PR: the P search starts at the previous T end), as on LUDB record 65."""
    sig, names = synthetic_ecg(heart_rate=rate, fs_hz=fs, pr_s=0.18, qt_s=0.36, t_mv=0.1,
                               ta_mv=0.08)
    m = measure_ecg(sig, fs, names)
    assert m["reasons"] == {}
    assert abs(m["qt_ms"] - 360) <= TOL_MS["qt_ms"], m["qt_ms"]
    assert abs(m["pr_ms"] - 180) <= TOL_MS["pr_ms"], m["pr_ms"]


@pytest.mark.parametrize("spike_mv", [1.0, 2.0])
def test_unpaced_beats_after_paced_ones_are_found(spike_mv):
    """Five paced beats (a 4 ms spike before the QRS) then five unpaced ones, at 500 Hz: the
    spikes' one-sample slope set the detection threshold above the unpaced beats, which
    were lost (LUDB record 95: five of ten beats found)."""
    sig, _ = synthetic_ecg(heart_rate=60, fs_hz=500, duration_s=10)
    for k in range(5):
        start = int((0.6 + k - 0.01) * 500)  # 10 ms before the QRS onset
        sig[:, start:start + 2] += spike_mv * np.linspace(1.0, 0.3, 12)[:, None]
    peaks = detect_r_peaks(sig, 500)
    onsets = 0.6 + np.arange(10)  # s
    assert peaks.size == 10
    np.testing.assert_array_less(np.abs(peaks / 500 - onsets - 0.03), 0.04)


@pytest.mark.parametrize("fs", [250, 500])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upsloping_st_segment_does_not_lengthen_the_qrs(fs, seed):
    """An ST segment rising 0.2 mV into a 0.2 mV T wave (early repolarization) keeps the
    spatial velocity at 5-8 % of the QRS's peak: the 5 % threshold alone ended the QRS in
    the ST segment (146-180 ms for 90; LUDB 1-99 records 5, 7 and 17: +24 to +36 ms); the
    knee where the velocity stops falling ends it at the QRS."""
    sig, names = synthetic_ecg(fs_hz=fs, qrs_s=0.09, st_mv=0.2, t_mv=0.2, seed=seed)
    m = measure_ecg(sig, fs, names)
    assert abs(m["qrs_ms"] - 90) <= TOL_MS["qrs_ms"], m["qrs_ms"]


def _mixed_record(n_other: int, spike_mv: float, fs: int = 500) -> tuple[np.ndarray, tuple]:
    """Ten beats at 60 /min (QRS onsets at 0.6 + k s): the first ``n_other`` are wide
    (160 ms) beats of another axis and no P wave, each after a one-sample pacing spike of
    ``spike_mv`` (none if 0: ventricular ectopics); the rest sinus beats with PR 160 ms and
    QRS 90 ms."""
    sinus, names = synthetic_ecg(heart_rate=60, fs_hz=fs, pr_s=0.16, qrs_s=0.09, qt_s=0.40)
    wide, _ = synthetic_ecg(heart_rate=60, fs_hz=fs, qrs_s=0.16, qt_s=0.44, qrs_axis_deg=-60,
                            t_axis_deg=120, af=True, seed=1)
    cut = int((0.6 + n_other - 0.4) * fs)  # between the last wide beat's T and the next P
    sig = np.concatenate((wide[:, :cut], sinus[:, cut:]), axis=1)
    for k in range(n_other if spike_mv else 0):
        sig[:, int((0.6 + k - 0.004) * fs)] += spike_mv
    return sig, names


@pytest.mark.parametrize("n_other, spike_mv", [(3, 0.0), (5, 1.5), (6, 1.5)])
def test_median_beat_of_the_dominant_unpaced_morphology(n_other, spike_mv):
    """Ectopic or paced beats among sinus beats: the median beat is made of the sinus beats
    only (the dominant unpaced morphology), so QRS and PR are theirs (LUDB record 95: half
    paced, half unpaced, the median over all beats gave QRS +46 ms)."""
    sig, names = _mixed_record(n_other, spike_mv)
    m = measure_ecg(sig, 500, names)
    assert abs(m["qrs_ms"] - 90) <= TOL_MS["qrs_ms"], m["qrs_ms"]
    assert abs(m["pr_ms"] - 160) <= TOL_MS["pr_ms"], m["pr_ms"]
    assert m["heart_rate_bpm"] == 60  # the rate still counts every beat


def test_paced_rhythm_leaves_intervals_empty_with_its_reason():
    """Eight of ten beats paced: fewer than three unpaced beats remain, so the intervals are
    None with a reason that names the pacing; the rate is still measured."""
    sig, names = _mixed_record(8, 1.5)
    m = measure_ecg(sig, 500, names)
    assert m["heart_rate_bpm"] == 60
    for key in ("pr_ms", "qrs_ms", "qt_ms", "qrs_axis_deg"):
        assert m[key] is None
        assert m["reasons"][key].startswith("paced rhythm (pacemaker spikes in 8 of"), m["reasons"]


@pytest.mark.parametrize("fs", [100, 500])
def test_flat_t_wave_leaves_qt_empty_with_its_reason(fs):
    """A T wave of 0.03 mV (dipole) has no end a reader could check: QT, QTc and the T axis
    are None with the reason; the rest is measured (LUDB records with a T this flat gave
    QT errors of -85 ms and more)."""
    sig, names = synthetic_ecg(fs_hz=fs, t_mv=0.03)
    m = measure_ecg(sig, fs, names)
    for key in ("qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms", "t_axis_deg"):
        assert m[key] is None
        assert m["reasons"][key] == "T wave too flat to find its end"
    assert m["qrs_ms"] is not None and m["pr_ms"] is not None


def test_atrial_fibrillation_has_no_pr_and_says_why():
    sig, names = synthetic_ecg(fs_hz=500, heart_rate=95, af=True, seed=3)
    m = measure_ecg(sig, 500, names)
    assert m["rr_irregular"] is True
    assert m["pr_ms"] is None and m["p_ms"] is None and m["p_axis_deg"] is None
    assert "atrial fibrillation" in m["reasons"]["pr_ms"]
    assert m["qrs_ms"] is not None and m["heart_rate_bpm"] is not None


def test_reasons_for_every_none():
    sig, names = synthetic_ecg(fs_hz=100, duration_s=2.5, heart_rate=60)
    m = measure_ecg(sig, 100, names)  # two beats: a rate, but no median beat
    assert m["heart_rate_bpm"] is not None
    assert m["qrs_ms"] is None and "too few whole beats" in m["reasons"]["qrs_ms"]
    assert all(k in m["reasons"] for k in MEASUREMENT_KEYS if m[k] is None)

    flat = measure_ecg(np.zeros((12, 1000)), 100, names)
    assert all(flat[k] is None for k in MEASUREMENT_KEYS)
    assert set(flat["reasons"].values()) == {"no usable leads"}

    rng = np.random.default_rng(0)
    noise = measure_ecg(rng.normal(0, 0.5, (12, 1000)), 100, names)
    assert noise["qrs_ms"] is None and noise["reasons"]["qrs_ms"]

    chest_only = np.array([n.startswith("V") for n in names])
    sig, _ = synthetic_ecg(fs_hz=100)
    m = measure_ecg(sig * chest_only[:, None], 100, names, lead_mask=chest_only)
    assert m["qrs_axis_deg"] is None and "lead I" in m["reasons"]["qrs_axis_deg"]
    assert m["qrs_ms"] is not None


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="one name per lead"):
        measure_ecg(np.zeros((3, 100)), 100, ["I", "II"])


def _m(**values) -> dict:
    m = dict.fromkeys(MEASUREMENT_KEYS)
    m.update(values, reasons={})
    return m


def test_contradictions_correct_rate_words():
    r = check_report("sinus rhythm. normal ecg.", _m(heart_rate_bpm=44))
    assert r["text"] == "sinus bradycardia. normal ecg."
    assert r["flags"][0]["message"] == "generated text says sinus rhythm; measured rate 44 /min"
    r = check_report("Sinus bradycardia. Normal ECG.", _m(heart_rate_bpm=72))
    assert r["text"] == "sinus rhythm. normal ecg." and r["flags"][0]["action"] == "corrected"
    r = check_report("sinus rhythm. normal ecg.", _m(heart_rate_bpm=125))
    assert r["text"].startswith("sinus tachycardia")
    # 50-59 /min: bradycardia by one definition only, so flagged, not rewritten
    r = check_report("sinus rhythm. normal ecg.", _m(heart_rate_bpm=55))
    assert r["text"] == "sinus rhythm. normal ecg." and r["flags"][0]["action"] == "flagged"
    assert check_report("sinus rhythm. normal ecg.", _m(heart_rate_bpm=72))["flags"] == []
    assert check_report("sinus rhythm. normal ecg.", _m())["flags"] == []  # nothing measured


def test_contradictions_av_block_bbb_and_axis():
    r = check_report("sinus rhythm. first degree av block.", _m(heart_rate_bpm=70, pr_ms=150))
    assert r["text"] == "sinus rhythm." and r["flags"][0]["statement"] == "1AVB"
    r = check_report("sinus rhythm. normal ecg.", _m(heart_rate_bpm=70, pr_ms=280))
    assert r["flags"][0]["action"] == "flagged" and "280 ms" in r["flags"][0]["message"]
    r = check_report("sinus rhythm. left bundle branch block.", _m(qrs_ms=90))
    assert r["text"] == "sinus rhythm." and r["flags"][0]["statement"] == "CLBBB"
    r = check_report("sinus rhythm. right bundle branch block.", _m(qrs_ms=90))
    assert r["text"] == "sinus rhythm. right bundle branch block."  # flagged only
    assert r["flags"][0]["action"] == "flagged"
    r = check_report("sinus rhythm. left axis deviation.", _m(qrs_axis_deg=60))
    assert r["text"] == "sinus rhythm." and r["flags"][0]["statement"] == "LAD"
    r = check_report("sinus rhythm. left axis deviation.", _m(qrs_axis_deg=-50))
    assert r["flags"] == []
    r = check_report("sinus rhythm. no left bundle branch block.", _m(qrs_ms=90))
    assert r["flags"] == []  # negated: nothing asserted
    r = check_report("atrial fibrillation.", _m(rr_irregular=False, pr_ms=160, heart_rate_bpm=70))
    assert r["flags"][0]["statement"] == "AFIB"


def test_measurement_block_order():
    sig, names = synthetic_ecg(fs_hz=100)
    lines = measurement_lines({"measurements": measure_ecg(sig, 100, names)})
    labels = [ln.split()[0] for ln in lines[1:]]
    assert labels == ["Vent.", "PR", "P", "QRS", "QT/QTc", "P-R-T"]


def test_batch_writes_measurements_everywhere(tmp_path):
    """records.jsonl, measurements.csv and the report hold the same measurements."""
    import wfdb

    from test_batch import run

    sig, names = synthetic_ecg(heart_rate=46, fs_hz=250)
    folder = tmp_path / "ecgs"
    folder.mkdir()
    wfdb.wrsamp("slow", fs=250, units=["mV"] * 12, sig_name=list(names), p_signal=sig.T,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(folder))
    out = tmp_path / "out"
    summary = run(folder, out, workers=1)
    assert summary.n_ok == 1
    entry = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    m = entry["measurements"]
    assert set(m) == set(MEASUREMENT_KEYS) | {"reasons"}
    assert abs(m["heart_rate_bpm"] - 46) <= 1
    with open(out / "measurements.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["heart_rate_bpm"] == str(m["heart_rate_bpm"])
    assert rows[0]["qrs_ms"] == str(m["qrs_ms"])
    report = (out / "reports" / "slow.txt").read_text()
    assert f"Vent. rate      {m['heart_rate_bpm']} /min" in report
    assert report.index("Measurements") < report.index("Generated report")


@pytest.mark.parametrize("fs", [50, 128, 257, 1000])
def test_odd_inputs_give_reasons_not_exceptions(fs):
    rng = np.random.default_rng(fs)
    names = [f"L{i}" for i in range(12)]  # no standard limb leads: no axes, with a reason
    for signal in (rng.normal(0, 1, (12, fs * 3)), np.full((12, fs * 3), np.nan),
                   np.cumsum(rng.normal(0, 0.1, (12, fs * 10)), axis=1),
                   synthetic_ecg(fs_hz=fs, heart_rate=210, duration_s=4)[0] * 40):
        m = measure_ecg(signal, fs, names)
        assert set(m) == set(MEASUREMENT_KEYS) | {"reasons"}
        assert all(k in m["reasons"] for k in MEASUREMENT_KEYS if m[k] is None)


def test_measurements_csv_follows_records_jsonl(tmp_path):
    """measurements.csv is rebuilt from records.jsonl (after --resume or a merge too):
    a failed record has a row with empty values, a not-measured value its reason."""
    from ecgreport.outputs import writers

    ok = {"record_id": "a", "status": "ok", "measurements": {
        **dict.fromkeys(MEASUREMENT_KEYS), "heart_rate_bpm": 48, "rr_irregular": True,
        "reasons": {"pr_ms": "no consistent P wave"}}}
    failed = {"record_id": "b", "status": "failed", "error": "b.hea: truncated"}
    (tmp_path / writers.RECORDS_JSONL).write_text(
        writers.jsonl_line(ok) + writers.jsonl_line(failed))
    writers.write_measurements_csv(tmp_path)
    with open(tmp_path / writers.MEASUREMENTS_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["record_id"] for r in rows] == ["a", "b"]
    assert rows[0]["heart_rate_bpm"] == "48" and rows[0]["rr_irregular"] == "true"
    assert rows[0]["pr_ms"] == "" and rows[0]["not_measured"] == "pr_ms: no consistent P wave"
    assert rows[1]["status"] == "failed" and rows[1]["heart_rate_bpm"] == ""


def test_peak_finder_matches_scipy():
    """The numpy peak finder promises scipy.signal.find_peaks(height=, distance=)."""
    from scipy.signal import find_peaks

    from ecgreport.measure.intervals import _peaks

    rng = np.random.default_rng(0)
    for trial in range(300):
        curve = rng.random(int(rng.integers(3, 400)))
        if trial % 2:
            curve = np.convolve(curve, np.ones(5) / 5, mode="same")
        height, distance = float(rng.uniform(0, 1)), int(rng.integers(1, 40))
        np.testing.assert_array_equal(_peaks(curve, height, distance),
                                      find_peaks(curve, height=height, distance=distance)[0])
