"""Tests for ecgreport.evaluation: text metrics, statement extraction, labels, detection AUC."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from ecgreport.evaluation import detection, labels, statements, text_metrics
from ecgreport.evaluation.detection import bootstrap_auc_ci, macro_auc, per_class_auc
from ecgreport.evaluation.labels import load_ptbxl_labels, load_scp_statements
from ecgreport.evaluation.statements import extract_statements, extractor_agreement, statement_scores
from ecgreport.evaluation.text_metrics import caption_scores, java_available

from conftest import PTBXL_MINI as MINI

# The full PTB-XL tables are not in the repository (tens of MB): only the development machine
# has them, in the shared data folder beside the clone.
FULL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"

needs_mini = pytest.mark.skipif(not (MINI / "ptbxl_database.csv").exists(), reason="ptb-xl-mini fixture absent")
needs_full = pytest.mark.skipif(not (FULL / "reports_en.csv").exists(), reason=f"full PTB-XL tables (not in the repository) absent at {FULL}")
needs_java = pytest.mark.skipif(not java_available(), reason="java not installed (PTB tokenizer, METEOR)")

# Real English PTB-XL reports (reports_en.csv, folds 1-8) and the codes the extractor must read.
# Unless marked, the expected set equals the record's scp_codes restricted to extractable codes.
REAL_REPORTS = [
    (2, "sinus bradycardia otherwise normal ekg", {"NORM", "SBRAD"}),
    (22, "sinus rhythm left type unspecific abnormal t", {"NDT", "SR"}),
    (131, "sinus rhythm qrs (t) abnormal septal infarction cannot be excluded", {"ABQRS", "ASMI", "SR"}),
    (220, "sinus rhythm overturned left type left anterior hemiblock qrs (t) abnormal normal",
     {"ABQRS", "LAFB", "SR"}),
    (255, "premature ventricular contraction(s). sinus rhythm. incomplete right bundle branch block. "
          "no definite pathology.", {"IRBBB", "PVC", "SR"}),
    (279, "sinus tachycardia. left axis deviation. left bundle branch block, this is most commonly due to"
          "    ischaemic heart disease.", {"CLBBB", "STACH"}),
    (330, "atrial fibrillation. otherwise no definite pathology.", {"AFIB", "NORM"}),
    (421, "premature atrial contraction(s). sinus rhythm. otherwise normal ecg. lead v4 shows artifact.",
     {"NORM", "PAC", "SR"}),
    (484, "sinus rhythm. st segments are depressed in i, avl, v5,6. t waves are low in these leads. this "
          "may be due to lv strain or ischaemia.", {"LOWT", "NDT", "SR", "STD_"}),
    (750, "premature atrial contraction(s). sinus rhythm. possible left atrial enlargement. voltages are "
          "high in chest leads suggesting lvh.", {"LAO/LAE", "LVH", "PAC", "SR", "VCLVH"}),
    (4386, "sinus rhythm location type normal qrs (t) abnormal anterolateral infarction possible inferior "
           "infarction likely old 4.46 unconfirmed report", {"ABQRS", "ILMI", "SR"}),
    (3341, "atrial fibrillation with moderately controlled ventricular response of 98 per minute. early "
           "digoxin effect. no ecg evidence of ischaemia.", {"AFIB", "DIG"}),
    # Negation: "no ... lvh" and "no ... pre-excitation" assert nothing.
    (17852, "sinus rhythm. normal ecg. no definite voltage evidence of lvh.", {"NORM", "SR"}),
    (12326, "sinus rhythm. normal ecg. there is no ecg evidence of a pre-excitation syndrome.", {"NORM", "SR"}),
    (16210, "sinus rhythm. q waves in ii, iii, avf consistent with old inferior    myocardial infarction. "
            "no definite voltage evidence of lvh.", {"IMI", "QWAVE", "SR"}),
]


# ---------------------------------------------------------------- text metrics

IDENTICAL = [
    "sinus rhythm. normal ecg.",
    "sinus rhythm left type qrs (t) abnormal inferior infarct probably old",
    "atrial fibrillation. otherwise no definite pathology.",
    "sinus bradycardia otherwise normal ekg",
]


@needs_java
def test_identical_reports_score_one_with_java():
    pytest.importorskip("pycocoevalcap")
    scores = caption_scores(IDENTICAL, IDENTICAL)
    assert set(scores) == set(text_metrics.METRICS)
    for n in range(1, 5):
        assert scores[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert scores["METEOR"] == pytest.approx(1.0, abs=1e-3)
    assert scores["ROUGE-L"] == pytest.approx(1.0)
    assert scores["CIDEr"] > 0
    assert all(isinstance(v, float) for v in scores.values())


@needs_java
def test_empty_hypothesis_does_not_crash_with_java():
    pytest.importorskip("pycocoevalcap")
    scores = caption_scores(IDENTICAL[:2], ["", "sinus rhythm left type"])
    assert 0 < scores["METEOR"] < 1
    assert 0 < scores["ROUGE-L"] < 1


def test_identical_reports_without_java_have_no_meteor():
    pytest.importorskip("pycocoevalcap")
    scores = caption_scores(IDENTICAL, IDENTICAL, java=False)
    assert "METEOR" not in scores
    assert set(scores) == set(text_metrics.METRICS) - {"METEOR"}
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE-L"] == pytest.approx(1.0)


def test_bleu1_hand_computed():
    pytest.importorskip("pycocoevalcap")
    # Clipped unigram precision: "sinus" counts once out of 4 words; same length, no penalty.
    clipped = caption_scores(["sinus rhythm normal ecg"], ["sinus sinus sinus sinus"], java=False)
    assert clipped["BLEU-1"] == pytest.approx(0.25, abs=1e-6)
    assert clipped["ROUGE-L"] == pytest.approx(0.25)
    # Precision 1, brevity penalty exp(1 - 4/2).
    short = caption_scores(["sinus rhythm normal ecg"], ["sinus rhythm"], java=False)
    assert short["BLEU-1"] == pytest.approx(math.exp(-1), abs=1e-6)


def test_empty_hypothesis_scores_zero_without_java():
    pytest.importorskip("pycocoevalcap")
    scores = caption_scores(["sinus rhythm normal ecg"], [""], java=False)
    assert scores["BLEU-1"] == pytest.approx(0.0, abs=1e-6)
    assert scores["ROUGE-L"] == 0.0


def test_caption_scores_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        caption_scores(["a b", "c d"], ["a b"], java=False)


def test_simple_tokenize_drops_punctuation_keeps_numbers():
    assert text_metrics.simple_tokenize("Sinus rhythm. QRS(T) abnormal, 0.2 mV") == "sinus rhythm qrs t abnormal 0.2 mv"


# ---------------------------------------------------------------- statements

@pytest.mark.parametrize("ecg_id, report, expected", REAL_REPORTS, ids=[str(r[0]) for r in REAL_REPORTS])
def test_extractor_on_real_reports(ecg_id, report, expected):
    assert extract_statements(report) == expected


def test_extractor_edit_note_and_trace_only():
    assert extract_statements("sinus rhythm. normal ecg. Edit: ASMI 50, (NORM 100)") == {"NORM", "SR"}
    assert extract_statements("trace only requested.") == set()


def test_extracted_codes_are_scp_statements():
    path = MINI / "scp_statements.csv"
    if not path.exists():
        pytest.skip("ptb-xl-mini fixture absent")
    known = {row["code"] for row in load_scp_statements(path)}
    assert set(statements.EXTRACTABLE_CODES) <= known


def test_statement_scores_identical_is_one():
    codes = [extract_statements(r) for _, r, _ in REAL_REPORTS]
    result = statement_scores(codes, codes, statements.EXTRACTABLE_CODES)
    assert result["micro_f1"] == 1.0
    assert result["macro_f1"] == 1.0
    assert result["micro_precision"] == result["micro_recall"] == 1.0


def test_statement_scores_hand_computed():
    refs = [{"A", "B"}, {"A"}, {"Z"}]
    hyps = [{"A"}, {"A", "C"}, {"Z"}]
    result = statement_scores(refs, hyps, ["A", "B", "C"])  # Z is not scored
    assert result["micro_precision"] == pytest.approx(2 / 3)
    assert result["micro_recall"] == pytest.approx(2 / 3)
    assert result["micro_f1"] == pytest.approx(2 / 3)
    # Macro over A (F1 1) and B (never predicted: P 0, R 0, F1 0); C has no reference positive.
    assert result["n_macro_codes"] == 2
    assert result["macro_f1"] == pytest.approx(0.5)
    assert result["macro_precision"] == pytest.approx(0.5)
    assert result["per_code"]["C"]["predicted"] == 1
    assert math.isnan(result["per_code"]["C"]["recall"])


def test_report_statement_scores_uses_all_scp_keys():
    # Likelihood 0 keys count: a report naming the rhythm scores on SR as well as NORM.
    result = statements.report_statement_scores(
        [{"NORM": 100.0, "SR": 0.0}, {"IMI": 35.0, "ABQRS": 0.0, "SR": 0.0}],
        ["sinus rhythm. normal ecg.", "sinus rhythm. normal ecg."],
    )
    assert result["per_code"]["SR"]["recall"] == 1.0
    assert result["per_code"]["NORM"]["precision"] == 0.5
    assert result["micro_recall"] == pytest.approx(3 / 5)


def test_statement_scores_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        statement_scores([{"A"}], [], ["A"])


@needs_mini
def test_extractor_agreement_on_mini_fixture():
    result = extractor_agreement(MINI / "ptbxl_database.csv", MINI / "reports_en.csv", range(1, 11))
    assert result["n_records"] == 17
    assert 0.5 < result["micro_f1"] <= 1.0


@needs_full
def test_documented_agreement_matches_measurement():
    for name, folds in (("folds 1-8", range(1, 9)), ("fold 10", [10])):
        result = extractor_agreement(FULL / "ptbxl_database.csv", FULL / "reports_en.csv", folds)
        assert result["micro_f1"] == pytest.approx(statements.AGREEMENT[name]["micro_f1"], abs=1e-3)
        assert result["macro_f1"] == pytest.approx(statements.AGREEMENT[name]["macro_f1"], abs=1e-3)
        assert result["micro_f1"] > 0.8


# ---------------------------------------------------------------- labels

@needs_mini
def test_labels_on_mini_fixture():
    table = load_ptbxl_labels(MINI)
    assert len(table.ecg_ids) == 17
    # Likelihood 0 still counts: record 1 is {'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}.
    assert table.labels["superclass"][1] == {"NORM"}
    assert table.labels["form"][1] == {"LVOLT"}
    assert table.labels["rhythm"][1] == {"SR"}
    assert table.labels["rhythm"][2] == {"SBRAD"}
    assert table.labels["subclass"][8] == {"IMI"}
    assert table.labels["form"][8] == {"ABQRS"}
    assert table.labels["subclass"][26] == {"NST_", "STTC"}
    assert table.labels["form"][26] == {"DIG", "NST_"}
    assert table.labels["subclass"][63] == {"AMI"}  # ASMI's subclass
    assert table.labels["subclass"][32] == {"LAFB/LPFB"}
    assert table.classes("superclass") == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert table.strat_fold[63] == 10


@needs_mini
def test_label_selection_and_matrix():
    table = load_ptbxl_labels(MINI)
    # Records without any form statement drop out of the form task (benchmark select_data).
    assert table.select("form") == [1, 8, 22, 26, 63]
    assert table.select("superclass", folds=[10]) == [9, 63]
    classes = table.classes("superclass")
    y = table.matrix("superclass", [1, 63, 26], classes)
    assert y.dtype == bool and y.shape == (3, 5)
    np.testing.assert_array_equal(y.sum(axis=1), [1, 1, 1])
    assert y[1, classes.index("MI")] and y[2, classes.index("STTC")]
    assert table.classes("superclass", folds=[10]) == ["MI", "NORM"]
    assert table.classes("superdiagnostic") == classes  # benchmark name accepted


def test_unknown_task_fails_loudly():
    table = labels.LabelTable(ecg_ids=(), strat_fold={}, labels={t: {} for t in labels.TASKS})
    with pytest.raises(ValueError, match="unknown task"):
        table.classes("superclasses")


@needs_mini
def test_load_scp_statements_rows():
    rows = load_scp_statements(MINI / "scp_statements.csv")
    assert len(rows) == 71
    by_code = {r["code"]: r for r in rows}
    assert by_code["IMI"]["diagnostic_class"] == "MI" and by_code["IMI"]["diagnostic"]
    assert by_code["NDT"]["form"] and by_code["NDT"]["diagnostic"]
    assert by_code["AFIB"]["rhythm"] and by_code["AFIB"]["diagnostic_class"] is None
    assert by_code["NORM"]["description"] == "normal ECG"


# ---------------------------------------------------------------- detection

def test_auc_constant_perfect_reversed():
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 1]], dtype=bool)
    assert per_class_auc(y, np.zeros(y.shape)).tolist() == [0.5, 0.5]
    perfect = y.astype(float) + 0.1 * np.arange(5)[:, None]
    assert per_class_auc(y, perfect).tolist() == [1.0, 1.0]
    assert per_class_auc(y, -perfect).tolist() == [0.0, 0.0]


def test_auc_hand_computed_with_ties():
    # Positives 0.8, 0.3, 0.5 vs negatives 0.8, 0.1: wins 0.5+1, 0+1, 0+1 = 3.5 of 6 pairs.
    y = np.array([1, 0, 1, 0, 1], dtype=bool)[:, None]
    s = np.array([0.8, 0.8, 0.3, 0.1, 0.5])[:, None]
    macro, per_class = macro_auc(y, s, classes=["MI"])
    assert macro == pytest.approx(3.5 / 6)
    assert per_class == {"MI": pytest.approx(3.5 / 6)}


def test_auc_class_without_negatives_is_nan_and_excluded(caplog):
    y = np.array([[1, 1], [0, 1], [1, 1]], dtype=bool)
    s = np.array([[0.9, 0.1], [0.2, 0.5], [0.8, 0.3]])
    with caplog.at_level(logging.WARNING, logger=detection.__name__):
        macro, per_class = macro_auc(y, s, classes=["A", "B"])
    assert macro == 1.0
    assert math.isnan(per_class["B"])
    assert "B" in caplog.text


def test_auc_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.random((300, 6)) < 0.3
    s = np.round(y + rng.normal(size=y.shape), 1)  # many ties
    assert macro_auc(y, s)[0] == pytest.approx(metrics.roc_auc_score(y, s, average="macro"), abs=1e-12)


def test_auc_rejects_bad_input():
    with pytest.raises(ValueError):
        macro_auc(np.ones((3, 2), bool), np.ones((3, 3)))
    with pytest.raises(ValueError):
        macro_auc(np.array([[1], [0]]), np.array([[np.nan], [0.1]]))


def _toy(n=400, c=5, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < np.linspace(0.05, 0.4, c)
    s = np.round(y * 0.8 + rng.normal(size=(n, c)), 2)
    return y, s


def test_weighted_auc_equals_auc_of_materialised_resample():
    y, s = _toy()
    idx = np.random.default_rng(3).integers(0, len(y), len(y))
    counts = np.bincount(idx, minlength=len(y))[None, :]
    np.testing.assert_allclose(detection._weighted_auc(y, s, counts)[0], per_class_auc(y[idx], s[idx]), atol=1e-12)


def test_bootstrap_ci_contains_point_and_is_deterministic():
    y, s = _toy()
    point, _ = macro_auc(y, s)
    low, high = bootstrap_auc_ci(y, s, n_resamples=200, seed=7)
    assert low < point < high
    assert high - low < 0.2
    assert bootstrap_auc_ci(y, s, n_resamples=200, seed=7) == (low, high)
    assert bootstrap_auc_ci(y, s, n_resamples=200, seed=8) != (low, high)
    narrow = bootstrap_auc_ci(y, s, n_resamples=200, seed=7, alpha=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_bootstrap_redraws_resamples_missing_a_class():
    # One positive in 40: about a third of resamples lack it and are drawn again.
    y = np.zeros((40, 2), dtype=bool)
    y[0, 0] = True
    y[::2, 1] = True
    s = np.linspace(1, 0, 40)[:, None].repeat(2, axis=1)
    low, high = bootstrap_auc_ci(y, s, n_resamples=100, seed=0)
    assert np.isfinite([low, high]).all() and 0 <= low <= high <= 1
