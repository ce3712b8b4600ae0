"""`ecgreport evaluate` end to end on the ptb-xl-mini fixture, on a bundle and a checkpoint."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import PTBXL_MINI
from ecgreport.cli import app

pytestmark = pytest.mark.skipif(not PTBXL_MINI.is_dir(), reason=f"fixture records absent at {PTBXL_MINI}")


def _run(model, tmp_path, *extra):
    out = tmp_path / "eval.json"
    md = tmp_path / "eval.md"
    result = CliRunner().invoke(app, [
        "evaluate", "--data", str(PTBXL_MINI), "--model", str(model), "--folds", "1-10",
        "--train-folds", "1-10", "--bootstrap", "20", "--json", str(out), "--markdown", str(md), "-q", *extra,
    ])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), md.read_text(), result.output


def test_evaluate_bundle_end_to_end(tiny_bundle, tmp_path):
    res, md, stdout = _run(tiny_bundle, tmp_path)
    assert res["n_records"] == 17 and res["n_with_reference"] == 17
    direct = res["zero_shot"]["direct"]
    assert set(direct) >= {"superclass", "subclass"}
    sup = direct["superclass"]
    assert sup["n_classes"] == 5 and 0.0 <= sup["macro_auc"] <= 1.0
    assert sup["ci95"][0] <= sup["ci95"][1]
    systems = res["report_generation"]
    assert set(systems) == {"model", "model+retrieval consensus", "retrieval consensus", "retrieval", "most_frequent"}
    # with the test records inside the retrieval pool, the nearest training ECG is the record
    # itself, so retrieval reproduces every reference exactly
    assert systems["retrieval"]["BLEU-1"] == pytest.approx(1.0, abs=1e-6)
    assert res["clinical_statements"]["retrieval"]["micro_f1"] == pytest.approx(
        res["clinical_statements"]["reference_reports"]["micro_f1"])
    assert "Zero-shot detection, direct scoring" in md and "| most_frequent |" in md
    assert "Quoted from the literature" in stdout


def test_evaluate_checkpoint_zero_shot_only(tiny_checkpoint, tmp_path):
    res, md, _ = _run(tiny_checkpoint, tmp_path, "--no-reports")
    assert res["backend"].startswith("PyTorch checkpoint")
    assert set(res["zero_shot"]) == {"direct", "knn"}
    assert "report_generation" not in res


def test_evaluate_bad_bundle_exits_5(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "--data", str(PTBXL_MINI), "--model", str(tmp_path)])
    assert result.exit_code == 5


def test_beam_search_on_a_checkpoint_is_a_usage_error(tiny_checkpoint):
    result = CliRunner().invoke(app, ["evaluate", "--data", str(PTBXL_MINI), "--model", str(tiny_checkpoint),
                                      "--beams", "3", "--limit", "2", "--bootstrap", "0"])
    assert result.exit_code == 2
