"""Signal checks and lead counts in `ecgreport batch`: records.jsonl, diagnoses.csv, the
report, and --min-leads."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from conftest import write_record
from test_batch import read_outputs, run
from test_checks import clean
from ecgreport.commands.batch import batch as batch_command
from ecgreport.leads import STANDARD_LEADS
from ecgreport.errors import UsageError
from ecgreport.options import BatchOptions
from ecgreport.signal.checks import MIN_LEADS

ROW = {lead: i for i, lead in enumerate(STANDARD_LEADS)}


def write_leads(folder, name, signal_mv, leads):
    """A WFDB record holding ``leads`` of a ``(12, n)`` 100 Hz signal."""
    return write_record(folder, name, signal_mv[[ROW[k] for k in leads]].T, list(leads),
                        adc_gain=1000.0)


@pytest.fixture
def folder(tmp_path):
    x = clean()
    d = tmp_path / "in"
    write_leads(d, "a_clean", x, STANDARD_LEADS)
    swapped = x.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    write_leads(d, "b_swapped", swapped, STANDARD_LEADS)
    write_leads(d, "c_x10", 10 * x, STANDARD_LEADS)
    write_leads(d, "d_i_ii_chest", x, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    write_leads(d, "e_ii_only", x, ["II"])
    write_leads(d, "f_limb_from_i_ii", x, ["I", "II"])
    return d


def test_checks_in_every_output(folder, tmp_path):
    out = tmp_path / "out"
    run(folder, out)
    rows, header, entries, run_json = read_outputs(out)
    assert header[:6] == ["record_id", "status", "quality", "signal_checks", "missing_leads",
                          "derived_leads"]
    row = {r["record_id"]: r for r in rows}
    entry = {e["record_id"]: e for e in entries}

    assert (row["a_clean"]["quality"], row["a_clean"]["signal_checks"]) == ("good", "")
    assert entry["a_clean"]["quality"] == "good" and entry["a_clean"]["signal_checks"] == []

    assert row["b_swapped"]["quality"] == "acceptable"
    assert row["b_swapped"]["signal_checks"] == \
        "limb_leads_inconsistent (I, II, III, aVR, aVL, aVF)"
    [finding] = entry["b_swapped"]["signal_checks"]
    assert finding["check"] == "limb_leads_inconsistent"
    assert "leads I and II look swapped" in finding["message"]
    report = (out / "reports" / "b_swapped.txt").read_text()
    assert "Signal checks: acceptable\n  - limb leads inconsistent" in report
    assert report.index("Signal checks") < report.index("Generated report")

    assert row["c_x10"]["quality"] == "unreadable"
    assert row["c_x10"]["signal_checks"] == "amplitude_implausible"
    assert "Signal checks: unreadable: a reader should not interpret this record" in \
        (out / "reports" / "c_x10.txt").read_text()

    # 8 independent leads: the other four limb leads derived, nothing missing.
    assert row["d_i_ii_chest"]["status"] == "ok"
    assert row["d_i_ii_chest"]["derived_leads"] == "III aVR aVL aVF"
    assert row["d_i_ii_chest"]["missing_leads"] == ""
    assert row["d_i_ii_chest"]["quality"] == "good"
    assert "derived from other leads: III, aVR, aVL, aVF" in \
        (out / "reports" / "d_i_ii_chest.txt").read_text()

    # I and II alone: six limb leads, the default minimum.
    assert row["f_limb_from_i_ii"]["status"] == "ok"
    assert row["f_limb_from_i_ii"]["missing_leads"] == "V1 V2 V3 V4 V5 V6"
    assert row["f_limb_from_i_ii"]["derived_leads"] == "III aVR aVL aVF"

    # Lead II alone: below the minimum, failed with the leads found.
    assert row["e_ii_only"]["status"] == "failed"
    assert entry["e_ii_only"]["error"] == (
        "e_ii_only.hea: too few leads: 1 usable of the 12 standard leads (II; the record "
        "holds II), at least 6 needed (--min-leads)")
    assert run_json["arguments"]["min_leads"] == MIN_LEADS


def test_min_leads_changes_the_minimum(folder, tmp_path):
    run(folder, tmp_path / "one", min_leads=1)
    rows, _, _, _ = read_outputs(tmp_path / "one")
    row = {r["record_id"]: r for r in rows}
    assert row["e_ii_only"]["status"] == "ok"
    assert row["e_ii_only"]["missing_leads"] == " ".join(l for l in STANDARD_LEADS if l != "II")

    run(folder, tmp_path / "seven", min_leads=7)
    rows, _, entries, _ = read_outputs(tmp_path / "seven")
    status = {r["record_id"]: r["status"] for r in rows}
    assert status == {"a_clean": "ok", "b_swapped": "ok", "c_x10": "ok", "d_i_ii_chest": "ok",
                      "e_ii_only": "failed", "f_limb_from_i_ii": "failed"}
    error = next(e["error"] for e in entries if e["record_id"] == "f_limb_from_i_ii")
    assert "6 usable of the 12 standard leads (I, II, III (derived), aVR (derived)" in error
    assert error.endswith("at least 7 needed (--min-leads)")


@pytest.mark.parametrize("bad", [0, 13])
def test_min_leads_out_of_range_is_a_usage_error(tmp_path, bad):
    with pytest.raises(UsageError, match="--min-leads must be between 1 and 12"):
        BatchOptions(tmp_path, tmp_path / "out", min_leads=bad)


def test_cli_default_is_the_measured_minimum():
    default = inspect.signature(batch_command).parameters["min_leads"].default.default
    assert default == MIN_LEADS == BatchOptions("a", "b").min_leads


def test_cli_min_leads(folder, tmp_path):
    from typer.testing import CliRunner

    from ecgreport.cli import app

    result = CliRunner().invoke(app, ["batch", str(folder), "--out", str(tmp_path / "o"),
                                      "--min-leads", "0", "-q"])
    assert result.exit_code == 2 and "--min-leads must be between 1 and 12" in result.output
