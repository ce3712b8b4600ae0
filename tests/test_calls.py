"""Findings called present or absent: thresholds, their choice on pseudo-labels, the bundle key,
and what batch writes (report text, diagnoses.csv)."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgreport.evaluation.thresholds import (FALLBACK_QUANTILE, MIN_POSITIVES, apply_thresholds, call_scores,
                                             choose_thresholds, f1_threshold)
from ecgreport.outputs import writers
from ecgreport.outputs.sink import BatchSink

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "export"
SCP_STATEMENTS = Path(__file__).resolve().parent / "data" / "fixtures" / "ptb-xl-mini" / "scp_statements.csv"


# ---------------------------------------------------------------- choosing thresholds


def brute_force_best_f1(scores, positives):
    best = -1.0
    for t in np.unique(scores):
        called = scores >= t
        tp = int((called & positives).sum())
        best = max(best, 2 * tp / (called.sum() + positives.sum()))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_f1_threshold_is_the_best_cut(seed):
    rng = np.random.default_rng(seed)
    positives = rng.random(300) < 0.2
    scores = rng.normal(size=300) + 1.2 * positives
    scores[:40] = np.round(scores[:40], 1)  # some ties
    t, f1 = f1_threshold(scores, positives)
    called = scores >= t
    achieved = 2 * (called & positives).sum() / (called.sum() + positives.sum())
    assert f1 == pytest.approx(achieved)
    assert f1 == pytest.approx(brute_force_best_f1(scores, positives))
    assert not np.any(scores == t)  # a midpoint, never a training score


def test_f1_threshold_without_positives_calls_nothing():
    t, f1 = f1_threshold(np.array([0.1, 0.9]), np.array([False, False]))
    assert t == math.inf and math.isnan(f1)


def test_f1_threshold_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="1-D"):
        f1_threshold(np.zeros(3), np.zeros(4, bool))


def test_choose_thresholds_uses_fallback_for_rare_labels():
    rng = np.random.default_rng(0)
    n = 500
    scores = rng.normal(size=(n, 2))
    pseudo = np.zeros((n, 2), bool)
    pseudo[:100, 0] = True
    scores[:100, 0] += 4.0
    pseudo[:MIN_POSITIVES - 1, 1] = True  # too few to choose on
    out = choose_thresholds({"s": scores}, {"s": pseudo}, {"s": ["common", "rare"]})
    common, rare = out["s"]["common"], out["s"]["rare"]
    assert common["source"] == "extractor F1" and common["n_pseudo_positive"] == 100
    assert common["f1_pseudo"] > 0.9
    assert rare["source"].startswith("fallback") and rare["f1_pseudo"] is None
    assert rare["threshold"] == pytest.approx(np.quantile(scores[:, 1], FALLBACK_QUANTILE), abs=1e-6)


def test_apply_thresholds_and_missing_threshold():
    calls = apply_thresholds(np.array([[0.5, 0.5, 0.5], [0.1, 0.9, 0.2]]), [0.5, 0.6, None])
    np.testing.assert_array_equal(calls, [[1, 0, 0], [0, 1, 0]])


def test_call_scores_match_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    truth = rng.random((200, 4)) < [0.3, 0.1, 0.05, 0.0]
    calls = rng.random((200, 4)) < 0.2
    res = call_scores(truth, calls, list("abcd"))
    for j, label in enumerate("abc"):
        assert res["per_label"][label]["f1"] == pytest.approx(metrics.f1_score(truth[:, j], calls[:, j]))
        assert res["per_label"][label]["precision"] == pytest.approx(
            metrics.precision_score(truth[:, j], calls[:, j], zero_division=0))
    # "d" has no support: left out of the macro mean.
    assert res["n_labels"] == 3
    assert res["macro_f1"] == pytest.approx(metrics.f1_score(truth[:, :3], calls[:, :3], average="macro"))


def test_pseudo_labels_come_from_the_report_text():
    sys.path.insert(0, str(REPO / "scripts"))
    from choose_thresholds import pseudo_labels

    from ecgreport.evaluation.labels import load_scp_statements

    sets = {"superclass": ["NORM", "CD"], "subclass": ["CLBBB", "NORM"], "rhythm": ["SR", "SBRAD"]}
    y = pseudo_labels(["sinus bradycardia. left bundle branch block.", "sinusrhythm normal ekg"],
                      load_scp_statements(SCP_STATEMENTS), sets)
    np.testing.assert_array_equal(y["superclass"], [[False, True], [True, False]])
    np.testing.assert_array_equal(y["subclass"], [[True, False], [False, True]])
    np.testing.assert_array_equal(y["rhythm"], [[False, True], [True, False]])


# ---------------------------------------------------------------- the bundle


def test_bundle_ships_thresholds_for_every_label():
    from ecgreport.onnx.runtime import load_bundle

    bundle = load_bundle(BUNDLE)  # checksum verified
    thresholds = bundle.thresholds
    assert thresholds is not None
    assert bundle.manifest["thresholds"]["folds"] == [9]
    for name, labels in bundle.label_sets.items():
        assert set(thresholds[name]) == set(labels)
        assert all(-1.0 <= t <= 1.0 for t in thresholds[name].values())


def test_thresholds_ignored_for_another_scoring_method():
    from ecgreport.onnx.runtime import load_bundle

    bundle = load_bundle(BUNDLE)
    bundle.manifest["thresholds"] = dict(bundle.manifest["thresholds"], method="other")
    assert bundle.thresholds is None
    del bundle.manifest["thresholds"]
    assert bundle.thresholds is None


def test_write_manifest_changes_only_the_thresholds_key(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    from choose_thresholds import write_manifest

    from ecgreport.onnx.runtime import load_bundle

    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    before = json.loads((copy / "manifest.json").read_text())
    new = {"method": before["scoring"]["method"], "folds": [9], "labels": {"rhythm": {"SR": {"threshold": 0.5}}}}
    write_manifest(copy, new)
    after = json.loads((copy / "manifest.json").read_text())
    assert after["thresholds"] == new
    assert {k: v for k, v in after.items() if k not in ("thresholds", "checksum")} == \
        {k: v for k, v in before.items() if k not in ("thresholds", "checksum")}
    assert load_bundle(copy).thresholds == {"rhythm": {"SR": 0.5}}


# ---------------------------------------------------------------- batch outputs

SETS = {"superclass": ["NORM", "MI"], "subclass": ["NORM", "IMI"], "rhythm": ["SR", "SBRAD", "STACH"]}
DESCRIPTIONS = {"superclass": {"NORM": "normal ECG", "MI": "myocardial infarction"},
                "subclass": {"NORM": "normal ECG", "IMI": "inferior MI"},
                "rhythm": {"SR": "sinus rhythm", "SBRAD": "sinus bradycardia", "STACH": "sinus tachycardia"}}
THRESHOLDS = {"superclass": {"NORM": 0.3, "MI": 0.4}, "subclass": {"NORM": 0.3, "IMI": 0.5},
              "rhythm": {"SR": 0.2, "SBRAD": 0.6, "STACH": 0.6}}


def bradycardia_scores():
    # NORM is high in both sets; STACH is the second rhythm label but below its threshold.
    return {"superclass": np.array([0.45, 0.1]), "subclass": np.array([0.45, 0.55]),
            "rhythm": np.array([0.1, 0.7, 0.5])}


def test_findings_called_each_once_grouped_by_set(tmp_path):
    sink = BatchSink(tmp_path, SETS, DESCRIPTIONS, top_k=3, thresholds=THRESHOLDS)
    found = sink.findings(bradycardia_scores())
    assert found["calls"] == {"NORM": 1, "MI": 0, "IMI": 1, "SR": 0, "SBRAD": 1, "STACH": 0}
    present = [(f["set"], f["label"]) for f in found["findings_present"]]
    assert present == [("superclass", "NORM"), ("subclass", "IMI"), ("rhythm", "SBRAD")]
    assert sink.columns[-len(found["calls"]):] == [f"present:{label}" for label in found["calls"]]
    assert len(sink.columns) == len(set(sink.columns))


def test_report_and_csv_show_the_calls(tmp_path):
    sink = BatchSink(tmp_path, SETS, DESCRIPTIONS, top_k=3, thresholds=THRESHOLDS)
    entry = {"record_id": "r1", "status": "ok", "path": "r1.hea", "fs_hz": 100.0, "duration_s": 10.0,
             "leads_found": ["I"], "window_starts_s": [0.0], "window_s": 10.0, "report_window_start_s": 0.0,
             "report": "sinus bradycardia", "warnings": [], **sink.findings(bradycardia_scores())}
    text = writers.report_text(entry)
    section = text[text.index("Findings called present"):text.index("Input warnings")]
    assert section.count("NORM") == 1
    assert "SBRAD (sinus bradycardia)" in section and "STACH" not in section
    assert section.index("superclass:") < section.index("subclass:") < section.index("rhythm:")
    assert "Top zero-shot findings" not in text
    row = next(csv.reader([writers.csv_text([writers.csv_row(entry, sink.columns)])]))
    cells = dict(zip(writers.csv_header(sink.columns), row))
    assert cells["superclass:NORM"] == "0.4500"  # scores kept
    assert [cells[f"present:{k}"] for k in ("NORM", "MI", "IMI", "SR", "SBRAD", "STACH")] == \
        ["1", "0", "1", "0", "1", "0"]


def test_without_thresholds_outputs_are_unchanged(tmp_path):
    sink = BatchSink(tmp_path, SETS, DESCRIPTIONS, top_k=3)
    found = sink.findings(bradycardia_scores())
    assert "calls" not in found and "findings_present" not in found
    assert sink.columns == writers.label_columns(SETS)


def test_nothing_called(tmp_path):
    sink = BatchSink(tmp_path, SETS, DESCRIPTIONS, top_k=0, thresholds=THRESHOLDS)
    found = sink.findings({k: np.full(len(v), -1.0) for k, v in SETS.items()})
    assert found["findings_present"] == [] and set(found["calls"].values()) == {0}


def test_batch_with_the_bundle_writes_call_columns(tmp_path):
    from ecgreport.batch import run_batch
    from ecgreport.options import BatchOptions

    out = tmp_path / "out"
    run_batch(BatchOptions(str(REPO / "sample_ecgs"), str(out), quiet=True, workers=1))
    with open(out / "diagnoses.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    calls = [c for c in header if c.startswith("present:")]
    assert len(header) == len(set(header))
    assert calls == ["present:" + n for n in dict.fromkeys(c.partition(":")[2] for c in header
                                                              if ":" in c and not c.startswith("present:"))]
    entries = {e["record_id"]: e for e in writers.read_jsonl(out / "records.jsonl")}
    for row in rows:
        if row["status"] != "ok":
            continue
        called = {c.partition(":")[2] for c in calls if row[c] == "1"}
        entry = entries[row["record_id"]]
        assert called == {f["label"] for f in entry["findings_present"]}
        text = (writers.report_path(out, row["record_id"])).read_text(encoding="utf-8")
        for label in called:
            assert text.count(f"- {label} ") + text.count(f"- {label}:") == 1
        assert "ekg" not in entry["report"] and "unconfirmed report" not in entry["report"]
