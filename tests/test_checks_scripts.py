"""The two validation scripts behind docs/signal-checks.md run end to end (on the
ptb-xl-mini fixture) and rewrite only their own blocks of the doc."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import doc_blocks  # noqa: E402
import lead_removal  # noqa: E402
import signal_checks_ptbxl  # noqa: E402


def test_replace_block_keeps_the_rest(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("# Title\n\nprose\n")
    doc_blocks.replace_block(doc, "x", "one")
    doc_blocks.replace_block(doc, "y", "two")
    doc_blocks.replace_block(doc, "x", "three")
    assert doc.read_text() == ("# Title\n\nprose\n\n<!-- BEGIN x -->\nthree\n<!-- END x -->\n\n"
                               "<!-- BEGIN y -->\ntwo\n<!-- END y -->\n")


def test_signal_checks_validation_runs(fixtures_dir, tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("written by hand\n")
    assert signal_checks_ptbxl.main(["--data", str(fixtures_dir / "ptb-xl-mini"),
                                     "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("written by hand\n")
    for needed in ("<!-- BEGIN signal-checks-ptbxl -->", "| `baseline_drift` | `baseline_drift` |",
                   "| I and II swapped (labels) | `limb_leads_inconsistent` | 1.000 |",
                   "<!-- BEGIN checks-table -->", "| `check_signal`, 500 Hz |"):
        assert needed in text


@pytest.mark.filterwarnings("ignore")
def test_lead_removal_runs(fixtures_dir, tmp_path):
    doc, out = tmp_path / "doc.md", tmp_path / "lr.json"
    assert lead_removal.main(["--data", str(fixtures_dir / "ptb-xl-mini"), "--doc", str(doc),
                              "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["name"] for r in results] == [name for name, _, _ in lead_removal.LEAD_SETS]
    by_name = {r["name"]: r for r in results}
    # Derivation from I, II and the chest leads gives the model the full 12-lead input.
    full = by_name["all 12 leads (baseline)"]
    derived = by_name["I, II + V1-V6 (the 8 independent leads; 4 limb leads derived)"]
    assert derived["n_leads"] == 12
    assert derived["statement_micro_f1"] == pytest.approx(full["statement_micro_f1"], abs=0.05)
    assert "<!-- BEGIN lead-removal -->" in doc.read_text()
    # --from-json redraws the same table without running the model.
    before = doc.read_text()
    assert lead_removal.main(["--from-json", "--json", str(out), "--doc", str(doc)]) == 0
    assert doc.read_text() == before
