"""Finding and reading records: against wfdb on the real fixtures, and tiny records
built with ``wfdb.wrsamp`` for every edge case (aliases, units, gain 0, NaN, flat, ...)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import wfdb

from conftest import ecg_like, fixture_headers, write_record
from ecgreport.errors import RecordError
from ecgreport.leads import STANDARD_LEADS, canonical_lead
from ecgreport.records import RecordRef, fastread, find_records, read_header, read_record
from ecgreport.signal import model_window, plan_windows

FIXTURE_HEADERS = fixture_headers("ptb-xl-mini", "challenge-2021")
ROW = {lead: i for i, lead in enumerate(STANDARD_LEADS)}
ATOL = 1 / 400 + 1e-6  # half a quantisation step of the gain-200 test records, in mV
PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _twelve_lead(directory: Path, name: str = "rec", n: int = 1000, seed: int = 0) -> Path:
    return write_record(directory, name, ecg_like(n, 12, seed=seed), PTBXL_NAMES)


def _edit_header(hea: Path, old: str, new: str, line: int | None = None) -> None:
    lines = hea.read_text(encoding="utf-8").splitlines()
    targets = range(len(lines)) if line is None else [line]
    for i in targets:
        lines[i] = lines[i].replace(old, new)
    hea.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- discovery


def test_find_records_nested_folders_sorted(tmp_path):
    for rel in ["b/deep/er/r3", "a/r2", "r1", "a/r10"]:
        path = tmp_path / rel
        write_record(path.parent, path.name, ecg_like(50, 1), ["II"])
    (tmp_path / "a" / "notes.txt").write_text("not a record")
    refs = find_records(tmp_path)
    assert [r.record_id for r in refs] == ["a/r10", "a/r2", "b/deep/er/r3", "r1"]
    assert refs[2].header_path == tmp_path / "b" / "deep" / "er" / "r3.hea"
    assert all(r.header_path.is_absolute() for r in refs)


def test_find_records_on_single_header(tmp_path):
    hea = write_record(tmp_path / "x", "one", ecg_like(50, 1), ["II"])
    assert find_records(hea) == [RecordRef("one", hea)]


def test_find_records_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_records(tmp_path / "nope")


def test_records_file_lists_the_directory_records(tmp_path, caplog):
    for rel in ["listed", "unlisted", "sub/deeper"]:
        path = tmp_path / rel
        write_record(path.parent, path.name, ecg_like(50, 1), ["II"])
    (tmp_path / "RECORDS").write_text("listed\nsub/deeper\n\nghost\nlisted\n")
    with caplog.at_level(logging.WARNING, logger="ecgreport.records.discover"):
        refs = find_records(tmp_path)
    # "unlisted" is ignored, "sub/deeper" is listed and walked but returned once.
    assert [r.record_id for r in refs] == ["listed", "sub/deeper"]
    assert any("ghost" in message for message in caplog.messages)


def _multi_segment(directory: Path) -> None:
    """A fixed-layout record "fixed" (2 segments) and a variable-layout record "var"."""
    write_record(directory, "fixed_1", ecg_like(300, 3, seed=1), ["I", "II", "V1"])
    write_record(directory, "fixed_2", ecg_like(300, 3, seed=2), ["I", "II", "V1"])
    (directory / "fixed.hea").write_text("fixed/2 3 100 600\nfixed_1 300\nfixed_2 300\n")
    write_record(directory, "var_1", ecg_like(200, 2, seed=3), ["I", "V1"])
    write_record(directory, "var_2", ecg_like(200, 3, seed=4), ["I", "II", "V1"])
    (directory / "var_layout.hea").write_text(
        "var_layout 3 100 0\n" + "".join(f"~ 0 200/mV 16 0 0 0 0 {n}\n" for n in ["I", "II", "V1"])
    )
    (directory / "var.hea").write_text("var/3 3 100 400\nvar_layout 0\nvar_1 200\nvar_2 200\n")


def test_multi_segment_records_are_one_record(tmp_path):
    _multi_segment(tmp_path / "ms")
    assert [r.record_id for r in find_records(tmp_path)] == ["ms/fixed", "ms/var"]


@pytest.mark.parametrize("name", ["fixed", "var"])
def test_read_multi_segment_matches_wfdb(tmp_path, name):
    _multi_segment(tmp_path)
    record = read_record(tmp_path / name, sampfrom=100, sampto=350)
    expected = wfdb.rdrecord(str(tmp_path / name), sampfrom=100, sampto=350).p_signal
    for channel, lead in enumerate(["I", "II", "V1"]):
        want = np.nan_to_num(expected[:, channel], nan=0.0).astype(np.float32)
        np.testing.assert_array_equal(record.signal_mv[ROW[lead]], want)
    assert record.fs_hz == 100 and record.signal_mv.shape == (12, 250)
    if name == "var":  # lead II is absent from the first segment: NaN there, set to 0
        assert "NaN samples set to 0: II (100)" in record.warnings
    info = read_header(tmp_path / name)
    assert (info.n_samples, info.sig_names) == ({"fixed": 600, "var": 400}[name], ["I", "II", "V1"])


def test_symlink_loop_does_not_hang(tmp_path):
    write_record(tmp_path / "a", "r", ecg_like(50, 1), ["II"])
    (tmp_path / "a" / "back").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "alias").symlink_to(tmp_path / "a", target_is_directory=True)
    result = []
    worker = threading.Thread(target=lambda: result.append(find_records(tmp_path)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "find_records did not return: symlink loop followed"
    assert [r.record_id for r in result[0]] == ["a/r"]


def test_non_utf8_file_name(tmp_path):
    hea = write_record(tmp_path, "rec", ecg_like(500, 1), ["II"])
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.hea")  # Latin-1 "café": not UTF-8
    os.rename(os.fsencode(hea), odd)
    (ref,) = find_records(tmp_path)
    assert ref.record_id == "caf\udce9"
    record = read_record(ref)  # its header text still points at rec.dat
    np.testing.assert_array_equal(record.lead_mask, np.arange(12) == ROW["II"])
    np.testing.assert_allclose(record.signal_mv[ROW["II"]], ecg_like(500, 1)[:, 0], atol=ATOL)
    os.remove(os.path.join(os.fsencode(tmp_path), b"rec.dat"))
    with pytest.raises(RecordError, match=r"^caf\\xe9\.hea: "):
        read_record(ref)


def test_find_challenge_mat_records(fixtures_dir):
    refs = find_records(fixtures_dir / "challenge-2021")
    assert [r.record_id for r in refs] == [f"HR0600{i}" for i in range(10)]


def test_find_all_fixture_records(fixtures_dir):
    refs = find_records(fixtures_dir)
    assert len(refs) == len(FIXTURE_HEADERS) == 37
    assert refs[0].record_id == "challenge-2021/HR06000"
    assert "ptb-xl-mini/records500/00000/00001_hr" in {r.record_id for r in refs}


# ---------------------------------------------------------------- reading vs wfdb


@pytest.mark.parametrize("hea", FIXTURE_HEADERS)
def test_fixture_records_bit_exact_with_wfdb(fixtures_dir, hea):
    assert fastread.parse_header(hea.read_text()) is not None  # the fast path is under test
    record = read_record(hea)
    reference = wfdb.rdrecord(str(hea.with_suffix("")), physical=True)
    assert reference.units[0].lower() == "mv"
    rows = [ROW[canonical_lead(name)] for name in reference.sig_name]
    assert sorted(rows) == list(range(12))
    np.testing.assert_array_equal(record.signal_mv[rows], reference.p_signal.T.astype(np.float32))
    assert record.signal_mv.dtype == np.float32
    np.testing.assert_array_equal(record.lead_mask, np.ones(12, dtype=bool))
    assert record.fs_hz == reference.fs and record.warnings == []
    assert record.leads_found == reference.sig_name
    info = read_header(hea)
    assert (info.fs_hz, info.n_samples, info.sig_names) == (
        reference.fs, reference.sig_len, reference.sig_name)


@pytest.mark.parametrize("hea", FIXTURE_HEADERS[::9])
def test_wfdb_fallback_equals_fast_path(fixtures_dir, hea, monkeypatch):
    fast = read_record(hea, sampfrom=123, sampto=987)
    monkeypatch.setattr(fastread, "parse_header", lambda text: None)
    slow = read_record(hea, sampfrom=123, sampto=987)
    np.testing.assert_array_equal(fast.signal_mv, slow.signal_mv)
    np.testing.assert_array_equal(fast.lead_mask, slow.lead_mask)
    assert (fast.fs_hz, fast.leads_found, fast.warnings) == (slow.fs_hz, slow.leads_found,
                                                            slow.warnings)


def test_window_read_equals_slice(tmp_path):
    hea = _twelve_lead(tmp_path, n=3000)
    full = read_record(hea)
    part = read_record(RecordRef("my/id", hea), sampfrom=1000, sampto=2000)
    np.testing.assert_array_equal(part.signal_mv, full.signal_mv[:, 1000:2000])
    assert (part.record_id, part.duration_s, full.duration_s) == ("my/id", 10.0, 30.0)
    for bad in [(-1, 10), (10, 10), (0, 3001)]:
        with pytest.raises(RecordError, match=r"rec\.hea: cannot read samples"):
            read_record(hea, *bad)


@pytest.mark.parametrize("fmt", ["212", "516"])  # 516: FLAC, read by wfdb only
def test_other_formats_via_wfdb(tmp_path, fmt):
    hea = write_record(tmp_path, "r", ecg_like(400, 12), PTBXL_NAMES, fmt=fmt)
    assert fastread.parse_header(hea.read_text()) is None
    record = read_record(hea, sampfrom=10, sampto=390)
    reference = wfdb.rdrecord(str(tmp_path / "r"), sampfrom=10, sampto=390).p_signal
    np.testing.assert_array_equal(record.signal_mv, reference.T.astype(np.float32))


# ---------------------------------------------------------------- leads and units


def test_lead_aliases_are_placed_by_name(tmp_path):
    names = ["avr", "C1", "AVL", "aVF", "III", "ii", "I", "V2", "c3", "V4", "v5", "V6"]
    data = ecg_like(500, 12)
    record = read_record(write_record(tmp_path, "alias", data, names))
    for channel, lead in enumerate(["aVR", "V1", "aVL", "aVF", "III", "II", "I",
                                    "V2", "V3", "V4", "V5", "V6"]):
        np.testing.assert_allclose(record.signal_mv[ROW[lead]], data[:, channel], atol=ATOL)
    assert record.lead_mask.all() and record.warnings == []
    assert record.leads_found == names


@pytest.mark.parametrize("unit, factor", [("uV", 1e-3), ("V", 1e3), ("mv", 1.0)])
def test_units_converted_to_mv(tmp_path, unit, factor):
    data_mv = ecg_like(500, 12)
    record = read_record(write_record(tmp_path, "u", data_mv / factor, PTBXL_NAMES,
                                      units=unit, adc_gain=200.0 * factor))
    np.testing.assert_allclose(record.signal_mv, data_mv.T, atol=ATOL)
    assert record.warnings == ([] if factor == 1.0
                               else [f"converted {unit} to mV: {', '.join(STANDARD_LEADS)}"])


@pytest.mark.parametrize("path", ["fast", "wfdb"])  # wfdb alone would read "µV" as "V"
def test_micro_sign_and_unknown_units(tmp_path, monkeypatch, path):
    data_mv = ecg_like(500, 2)
    hea = write_record(tmp_path, "mu", data_mv * 1000, ["I", "II"], units="uV", adc_gain=0.2)
    _edit_header(hea, "/uV", "/\u00b5V", line=1)
    _edit_header(hea, "/uV", "/mmHg", line=2)
    if path == "wfdb":
        monkeypatch.setattr(fastread, "parse_header", lambda text: None)
    record = read_record(hea)
    np.testing.assert_allclose(record.signal_mv[0], data_mv[:, 0], atol=0.01)
    np.testing.assert_allclose(record.signal_mv[1], data_mv[:, 1] * 1000, atol=10)
    assert record.warnings[-2:] == ["converted \u00b5V to mV: I",
                                    "unknown unit 'mmHg' for leads II: assumed mV"]


def test_extra_and_duplicate_leads(tmp_path):
    data = ecg_like(500, 15)
    names = PTBXL_NAMES + ["X", "vx", "v1"]
    record = read_record(write_record(tmp_path, "extra", data, names))
    np.testing.assert_allclose(record.signal_mv, data[:, :12].T, atol=ATOL)  # first V1 kept
    assert record.warnings == ["dropped non-standard leads: X, vx",
                               "duplicate leads ignored, first kept: v1"]


def test_missing_leads_masked(tmp_path):
    names = ["I", "II", "V1", "V2", "V3", "V6"]
    record = read_record(write_record(tmp_path, "eight", ecg_like(500, 6), names))
    expected_mask = np.array([lead in {"I", "II", "V1", "V2", "V3", "V6"} for lead in STANDARD_LEADS])
    np.testing.assert_array_equal(record.lead_mask, expected_mask)
    np.testing.assert_array_equal(record.signal_mv[~expected_mask], 0.0)
    assert record.warnings == ["missing leads: III, aVR, aVL, aVF, V4, V5 (zero-filled)"]


def test_one_lead_record(tmp_path):
    data = ecg_like(1000, 1)
    record = read_record(write_record(tmp_path, "one", data, ["MLII"]))
    np.testing.assert_array_equal(record.lead_mask, np.arange(12) == ROW["II"])
    np.testing.assert_allclose(record.signal_mv[ROW["II"]], data[:, 0], atol=ATOL)
    np.testing.assert_array_equal(np.delete(record.signal_mv, ROW["II"], axis=0), 0.0)
    missing = [lead for lead in STANDARD_LEADS if lead != "II"]
    assert record.warnings == [f"missing leads: {', '.join(missing)} (zero-filled)"]


def test_no_standard_lead_is_an_error(tmp_path):
    hea = write_record(tmp_path, "abp", ecg_like(500, 2), ["ABP", "PLETH"])
    with pytest.raises(RecordError, match=r"^abp\.hea: none of the 12 standard leads found "
                                          r"\(leads: ABP, PLETH\)$"):
        read_record(hea)


# ---------------------------------------------------------------- unusable leads


@pytest.mark.parametrize("path", ["fast", "wfdb"])
def test_gain_zero_lead_unusable(tmp_path, monkeypatch, path):
    hea = _twelve_lead(tmp_path)
    _edit_header(hea, " 200.0(0)/mV", " 0(0)/mV", line=1 + 8)  # V3
    if path == "wfdb":
        monkeypatch.setattr(fastread, "parse_header", lambda text: None)
    record = read_record(hea)
    np.testing.assert_array_equal(record.lead_mask, np.arange(12) != ROW["V3"])
    np.testing.assert_array_equal(record.signal_mv[ROW["V3"]], 0.0)
    assert record.warnings == ["lead V3 has gain 0 (uncalibrated): unusable"]


@pytest.mark.parametrize("path", ["fast", "wfdb"])
def test_nan_samples(tmp_path, monkeypatch, path):
    data = ecg_like(1000, 12)
    data[100:117, ROW["V1"]] = np.nan
    data[:, ROW["aVL"]] = np.nan
    hea = write_record(tmp_path, "nan", data, PTBXL_NAMES)
    if path == "wfdb":
        monkeypatch.setattr(fastread, "parse_header", lambda text: None)
    record = read_record(hea)
    np.testing.assert_array_equal(record.lead_mask, np.arange(12) != ROW["aVL"])
    np.testing.assert_array_equal(record.signal_mv[ROW["V1"], 100:117], 0.0)
    np.testing.assert_allclose(record.signal_mv[ROW["V1"], :100], data[:100, ROW["V1"]],
                               atol=ATOL)
    np.testing.assert_array_equal(record.signal_mv[ROW["aVL"]], 0.0)
    assert record.warnings == ["lead aVL is all NaN: unusable", "NaN samples set to 0: V1 (17)"]


def test_all_nan_is_an_error(tmp_path):
    hea = write_record(tmp_path, "void", np.full((500, 3), np.nan), ["I", "II", "V1"])
    with pytest.raises(RecordError, match=r"^void\.hea: no usable leads"):
        read_record(hea)


def test_flat_lead(tmp_path):
    data = ecg_like(1000, 12)
    data[:, ROW["V5"]] = 0.3  # constant: a disconnected electrode
    record = read_record(write_record(tmp_path, "flat", data, PTBXL_NAMES))
    np.testing.assert_array_equal(record.lead_mask, np.arange(12) != ROW["V5"])
    np.testing.assert_array_equal(record.signal_mv[ROW["V5"]], 0.0)
    assert record.warnings == ["flat lead V5"]


# ---------------------------------------------------------------- broken records


@pytest.mark.parametrize("path", ["fast", "wfdb"])
def test_truncated_signal_file(tmp_path, monkeypatch, path):
    hea = _twelve_lead(tmp_path, name="00001_lr")
    dat = tmp_path / "00001_lr.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    if path == "wfdb":
        monkeypatch.setattr(fastread, "parse_header", lambda text: None)
    with pytest.raises(RecordError) as err:
        read_record(hea)
    assert str(err.value) == ("00001_lr.hea: signal file 00001_lr.dat is truncated "
                              "(expected 24000 bytes, found 1000)")


def test_missing_signal_and_header_files(tmp_path):
    hea = _twelve_lead(tmp_path, name="gone")
    (tmp_path / "gone.dat").unlink()
    with pytest.raises(RecordError, match=r"^gone\.hea: cannot read signal file gone\.dat"):
        read_record(hea)
    with pytest.raises(RecordError, match=r"^absent\.hea: header file not found$"):
        read_record(tmp_path / "absent")


def test_unparsable_header(tmp_path):
    (tmp_path / "junk.hea").write_text("this is not\na WFDB header ((\n")
    message = "junk.hea: header line 1 (record line): number of signals 'is' is not a whole number >= 0"
    for read in (read_record, read_header):
        with pytest.raises(RecordError) as err:
            read(tmp_path / "junk.hea")
        assert str(err.value) == message


# Headers that once gave Python's own messages ("list index out of range", "float division
# by zero", "int too large to convert to float") or made wfdb allocate gigabytes: each edit
# of a good 12-lead header, and the reason the user now reads instead.
BAD_HEADERS = [
    (0, "r 2147483648 100 1000", "header line 1 (record line): number of signals 2147483648 is "
                                 "out of range (at most 10000)"),
    (0, "r 12 0 1000", "header line 1 (record line): sampling frequency 0 Hz is not positive"),
    (0, "r 12 1e309 1000", "header line 1 (record line): sampling frequency '1e309' is not a number"),
    (0, "r 12 0.0001 1000", "header line 1 (record line): sampling frequency 0.0001 Hz is out of "
                            "range (1 Hz to 100000 Hz)"),
    (0, "r 12 100001 1000", "header line 1 (record line): sampling frequency 100001 Hz is out of "
                            "range (1 Hz to 100000 Hz)"),
    (0, "r 12 100 99999999999999999999", "header line 1 (record line): signal length "
                                         "99999999999999999999 samples is out of range (at most 1099511627776)"),
    (0, "r 12 100 1000 10:00:00 31/02/2020", "header line 1 (record line): base date '31/02/2020' is not a date (DD/MM/YYYY)"),
    (0, "r 12 100 -1", "header line 1 (record line): signal length '-1' is not a whole number >= 0"),
    (0, "r/0 12 100 1000", "header line 1 (record line): multi-segment record with 0 segments"),
    (1, "r.dat 16 abc 16 0 0 0 0 I", "header line 2 (signal 1): gain 'abc' is not a number (expected e.g. 1000(0)/mV)"),
    (1, "r.dat 999 200(0)/mV 16 0 0 0 0 I", "header line 2 (signal 1): format 999 is not a WFDB signal format "
                                            "(8, 16, 24, 32, 61, 80, 160, 212, 310, 311, 508, 516, 524)"),
    (1, "r.dat 16x0 200(0)/mV 16 0 0 0 0 I", "header line 2 (signal 1): 0 samples per frame, expected 1 to 10000"),
    (1, "r.dat 16 200(99999999999)/mV 16 0 0 0 0 I", "header line 2 (signal 1): baseline 99999999999 is out "
                                                     "of range (32-bit integer)"),
    (1, "r.dat 16 1e400(0)/mV 16 0 0 0 0 I", "header line 2 (signal 1): gain 1e400 is out of range"),
    (1, "../r.dat 16 200(0)/mV 16 0 0 0 0 I", "header line 2 (signal 1): signal file name '../r.dat' is not "
                                              "a plain file name in the header's folder"),
    (1, None, "header says 12 signals but has 11 signal lines"),
]


@pytest.mark.parametrize("line, text, reason", BAD_HEADERS, ids=[r[2][:40] for r in BAD_HEADERS])
def test_bad_header_fields_name_the_line_and_the_field(tmp_path, line, text, reason):
    hea = _twelve_lead(tmp_path, name="r")
    lines = hea.read_text().splitlines()
    if text is None:
        del lines[line]
    else:
        lines[line] = text
    hea.write_text("\n".join(lines) + "\n")
    for read in (read_header, read_record):
        with pytest.raises(RecordError) as err:
            read(hea)
        assert str(err.value) == f"r.hea: {reason}"


@pytest.mark.parametrize("fs_hz", [1, 3.7, 100000])
def test_extreme_but_valid_sampling_rates_reach_the_model_window(tmp_path, fs_hz):
    """The limits of check_header are ones the preprocessing handles (finite, 12 x 1000)."""
    hea = _twelve_lead(tmp_path, name="r", n=200)
    _edit_header(hea, "r 12 100 200", f"r 12 {fs_hz} 200", line=0)
    record = read_record(hea)
    x = model_window(record.signal_mv, record.fs_hz, 100.0, 1000)
    assert x.shape == (12, 1000) and np.isfinite(x).all()


def test_header_check_accepts_what_wfdb_reads(tmp_path):
    """Optional fields may go (the length is then inferred from the file); a description
    may follow fewer than five integer fields, as wfdb reads it."""
    hea = _twelve_lead(tmp_path, name="r")
    lines = hea.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:3])  # no signal length
    lines[1] = "r.dat 16 200(0)/mV 16 0 I"
    hea.write_text("\n".join(lines) + "\n")
    record = read_record(hea)
    assert record.signal_mv.shape == (12, 1000) and record.lead_mask.all()


def test_zero_length_record(tmp_path):
    (tmp_path / "empty.hea").write_text("empty 1 100 0\nempty.dat 16 200(0)/mV 16 0 0 0 0 II\n")
    (tmp_path / "empty.dat").write_bytes(b"")
    with pytest.raises(RecordError, match=r"^empty\.hea: signal is empty \(0 samples\)$"):
        read_record(tmp_path / "empty")


def test_two_second_record_reads_but_is_too_short(tmp_path):
    record = read_record(_twelve_lead(tmp_path, n=200))
    assert record.signal_mv.shape == (12, 200) and record.duration_s == 2.0
    with pytest.raises(ValueError, match="too short: 2.00 s, the minimum is 5 s"):
        plan_windows(record.signal_mv.shape[1], record.fs_hz, window_s=10, min_s=5, max_windows=8)
