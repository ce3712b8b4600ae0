"""Your own ECGs and reports, end to end: `dataset build` -> train -> `export-onnx` -> `batch`
-> `evaluate --truth`, on records this file writes (reports in the header comments, 500 and
100 Hz, string ids in subfolders; no PTB-XL file involved), with the commands run from
other working directories. Plus a clear error for each malformed dataset.

Training uses conftest's tiny model for 2 epochs: the whole flow takes seconds.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import TINY_MODEL, ecg_like, quiet_console, write_record
from ecgreport.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread", "text_cache")

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
REPORTS = ["Rhythm: sinus rhythm. Normal ECG.", "Rhythm: sinus rhythm. Left axis deviation.",
           "Rhythm: atrial fibrillation. Left ventricular hypertrophy.", "Rhythm: sinus bradycardia. Left axis deviation."]
LABELS = "label,description\nSR,sinus rhythm\nAFIB,atrial fibrillation\nLAD,left axis deviation\n"


def make_source(folder: Path, n: int = 20) -> list[str]:
    """n records under folder/site-a and folder/site-b: even ones at 500 Hz, odd ones at 100 Hz,
    each 10 s, the report in its header comments after WFDB-style fields; the last record has
    fields only (no report). Returns the record ids as `find_records` names them."""
    ids = []
    for i in range(n):
        site = "site-a" if i % 2 == 0 else "site-b"
        fs = 500 if i % 2 == 0 else 100
        name = f"ecg-{chr(65 + i % 26)}{i:02d}"
        hea = write_record(folder / site, name, ecg_like(10 * fs, 12, fs, seed=i), LEADS, fs_hz=fs)
        comments = ["#<age>: 60", "#<sex>: F", "#<diagnoses>:"]
        if i < n - 1:
            comments += [f"#{part.strip()}." for part in REPORTS[i % len(REPORTS)].split(".") if part.strip()]
        with hea.open("a") as f:
            f.write("\n".join(comments) + "\n")
        ids.append(f"{site}/{name}")
    return ids


def invoke(args: list[str]):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_own_data_flow_end_to_end(tmp_path, monkeypatch):
    from ecgreport.evaluation import text_metrics
    from ecgreport.training.config import TrainConfig
    from ecgreport.training.loop import train

    monkeypatch.setattr(text_metrics, "java_available", lambda: False)  # METEOR's JVM is slow; BLEU/CIDEr suffice
    src = tmp_path / "ecgs"
    ids = make_source(src)
    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    monkeypatch.chdir(work)

    # 1. dataset build: relative --out, reports from the header comments, a record-level split
    built = invoke(["dataset", "build", src, "--out", "ds", "--split", "50/25/25", "--name", "Synthetic ECGs"])
    assert built.exit_code == 0, built.output
    db = rows(work / "ds" / "database.csv")
    assert sorted(r["record_id"] for r in db) == sorted(ids)
    assert {r["fs_hz"] for r in db} == {"500", "100"}
    assert sorted(r["split"] for r in db) == ["test"] * 5 + ["train"] * 10 + ["val"] * 5
    reports = {r["record_id"]: r["report"] for r in rows(work / "ds" / "reports.csv")}
    assert len(reports) == 19 and ids[-1] not in reports
    assert reports[ids[2]] == "Rhythm: atrial fibrillation. Left ventricular hypertrophy."  # fields left out
    again = invoke(["dataset", "build", src, "--out", tmp_path / "ds2", "--split", "50/25/25"])
    assert again.exit_code == 0
    assert [r["split"] for r in rows(tmp_path / "ds2" / "database.csv")] == [r["split"] for r in db]  # deterministic
    checked = invoke(["dataset", "check", "ds"])
    assert checked.exit_code == 0, checked.output
    assert "19 of 20 records have a report" in checked.output and "500 Hz" in checked.output

    # 2. train (tiny model) with a relative data path: the run records it absolute
    cfg = TrainConfig(data="ds", out="runs/own", epochs=2, batch_size=4, device="cpu", min_word_count=1,
                      lr=3e-3, model_overrides=dict(TINY_MODEL))
    run = train(cfg, console=quiet_console())
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["data"] == str((work / "ds").resolve())
    assert (recorded["train_split"], recorded["val_split"], recorded["data_name"]) == (["train"], ["val"], "Synthetic ECGs")
    checkpoint = (work / run / "best.pt").resolve()

    # 3. export from two working directories: the same bundle (the run's data found from either)
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)
    unlabelled = invoke(["export-onnx", checkpoint, "--out", "bundle", "-q"])
    assert unlabelled.exit_code == 2 and "--labels NAME=FILE.csv" in unlabelled.output  # no PTB-XL label sets here
    bundles = {}
    for cwd in (work, other):
        monkeypatch.chdir(cwd)
        old_umask = os.umask(0o022)
        try:
            exported = invoke(["export-onnx", checkpoint, "--out", "bundle", "--labels", f"syn={labels}", "-q"])
        finally:
            os.umask(old_umask)
        assert exported.exit_code == 0, exported.output
        bundles[cwd] = cwd / "bundle"
        assert (cwd / "bundle").stat().st_mode & 0o777 == 0o755  # follows the umask, not mkdtemp's 0700
    manifests = [json.loads((b / "manifest.json").read_text()) for b in bundles.values()]
    for m in manifests:
        assert set(m["label_sets"]) == {"syn"}
        n_train = sum(1 for r in db if r["split"] == "train" and r["record_id"] in reports)  # with a report
        assert m["retrieval"]["n_train"] == n_train and m["retrieval"]["splits"] == ["train"]
        assert m["parity"]["n_records"] == 16  # the dataset's own records, not noise
        assert m["training_data"]["name"] == "Synthetic ECGs"
    for name in ("retrieval.npz", "retrieval_reports.json", "label_embeddings.npz", "tokenizer.json"):
        assert manifests[0]["files"][name]["sha256"] == manifests[1]["files"][name]["sha256"], name
    card = (bundles[other] / "MODEL_CARD.md").read_text()
    assert "Synthetic ECGs" in card and "PTB-XL" not in card

    # 4. batch on the source folder, from the other directory
    batched = invoke(["batch", src, "--model", "bundle", "--out", "out", "-q"])
    assert batched.exit_code == 0, batched.output
    texts = [p.read_text() for p in (other / "out" / "reports").rglob("*.txt")]
    assert len(texts) == 20
    assert all("nearest Synthetic ECGs training ECGs" in t and "PTB-XL" not in t for t in texts)

    # 5. a truth table from the reports, then evaluate on the held-out splits
    made = invoke(["dataset", "truth", work / "ds", "--labels", f"syn={labels}"])
    assert made.exit_code == 0, made.output
    truth = rows(work / "ds" / "truth" / "syn.csv")
    assert truth[0].keys() == {"record_id", "SR", "AFIB", "LAD"}
    by_id = {r["record_id"]: r for r in truth}
    assert (by_id[ids[2]]["AFIB"], by_id[ids[2]]["SR"], by_id[ids[1]]["LAD"]) == ("1", "0", "1")
    evaluated = invoke(["evaluate", "--data", work / "ds", "--model", "bundle", "--split", "val,test",
                        "--truth", f"syn={work / 'ds' / 'truth' / 'syn.csv'}", "--bootstrap", "20",
                        "--json", "ev.json", "--markdown", "ev.md", "-q"])
    assert evaluated.exit_code == 0, evaluated.output
    res = json.loads((other / "ev.json").read_text())
    assert res["n_records"] == 10 and res["n_with_reference"] == 10 - (ids[-1] in {r["record_id"] for r in db if r["split"] != "train"})
    assert set(res["report_generation"]) >= {"model", "retrieval", "most_frequent"}
    assert 0.0 <= res["report_generation"]["retrieval"]["BLEU-1"] <= 1.0
    for method in ("direct", "knn"):
        syn = res["zero_shot"][method]["syn"]
        assert syn["n_records"] >= 9 and 1 <= syn["n_classes"] <= 3
        assert 0.0 <= syn["macro_auc"] <= 1.0 and syn["ci95"][0] <= syn["ci95"][1]
    # the references themselves, read by the same rule that made the truth: perfect agreement
    assert res["report_labels"]["syn"]["reference_reports"]["micro_f1"] == pytest.approx(1.0)
    assert "clinical_statements" not in res and "quoted_literature" not in res
    assert "PTB-XL" not in evaluated.output and "PTB-XL" not in (other / "ev.md").read_text()


# ---------------------------------------------------------------- malformed datasets


def _dataset(folder: Path, database: str, reports: str | None = "record_id,report\nr1,sinus rhythm\n") -> Path:
    folder.mkdir()
    (folder / "database.csv").write_text(database)
    if reports is not None:
        (folder / "reports.csv").write_text(reports)
    return folder


@pytest.mark.parametrize("case, database, reports, expected", [
    ("no filename column", "record_id,split\nr1,train\n", None, "no file column"),
    ("no split column", "record_id,filename\nr1,a.hea\n", None, "no split column"),
    ("no id column", "name,filename,split\nr1,a.hea,train\n", None, "no id column"),
    ("duplicate id", "record_id,filename,split\nr1,a,train\nr1,b,val\n", None, "appears twice"),
    ("empty split value", "record_id,filename,split\nr1,a,\n", None, "has no split"),
    ("no reports", "record_id,filename,split\nr1,a,train\n", "", "no reports"),
    ("reports without columns", "record_id,filename,split\nr1,a,train\n", "id;text\n", "expected columns record_id,report"),
    ("empty validation split", "record_id,filename,split\nr1,a,train\n", "record_id,report\nr1,sinus rhythm\n",
     "--val-split"),
])
def test_malformed_dataset_is_a_clear_error(tmp_path, case, database, reports, expected):
    if reports == "":
        reports = None
    data = _dataset(tmp_path / "ds", database, reports)
    if case == "empty validation split":
        write_record(data, "a", ecg_like(1000, 12), LEADS)
    result = invoke(["train", "--data", data, "--out", tmp_path / "run", "--device", "cpu",
                     "--no-zero-shot-metric", "--quiet"])
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert expected in message and "Traceback" not in message
    if case == "empty validation split":
        assert "train (1 records, 1 with a report)" in message and "dataset build" in message
    check = invoke(["dataset", "check", data])
    assert check.exit_code == 1


def test_string_ids_and_one_file_column_at_any_rate(tmp_path):
    """String ids (the reason PTB-XL's int() parse failed) and 'filename' at 500 Hz, relative
    and absolute, resampled to the model's 100 Hz."""
    from ecgreport.training.data import load_split

    signal = ecg_like(5000, 12, 500)
    write_record(tmp_path / "ds" / "recs", "ecg-x", signal, LEADS, fs_hz=500)
    hea_abs = write_record(tmp_path / "elsewhere", "ecg-y", signal, LEADS, fs_hz=500)
    data = tmp_path / "ds"
    (data / "database.csv").write_text(f"record_id,filename,split\npatient 7/ecg x,recs/ecg-x,train\nABC-1,{hea_abs},train\n")
    (data / "reports.csv").write_text("record_id,report\npatient 7/ecg x,Sinus rhythm.\nABC-1,Atrial fibrillation.\n")
    got = load_split(data, "train", 100.0, 1000)
    assert list(got.record_ids) == ["ABC-1", "patient 7/ecg x"]
    assert got.reports == ["atrial fibrillation.", "sinus rhythm."]
    assert got.signals.shape == (2, 12, 1000)
    np.testing.assert_allclose(got.signals[0], got.signals[1])  # same signal, either path form


def test_build_from_a_reports_csv_keeps_each_patient_in_one_split(tmp_path):
    ids = make_source(tmp_path / "ecgs", n=12)
    table = tmp_path / "reports.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record_id", "report", "patient_id"])
        for i, rid in enumerate(ids):
            w.writerow([rid.split("/")[1] if i % 3 == 0 else rid, f"report {i}", f"p{i // 3}"])  # file name alone works too
    result = invoke(["dataset", "build", tmp_path / "ecgs", "--out", tmp_path / "ds", "--reports", table, "--split", "2/1/1"])
    assert result.exit_code == 0, result.output
    db = rows(tmp_path / "ds" / "database.csv")
    by_patient: dict = {}
    for r in db:
        by_patient.setdefault(r["patient_id"], set()).add(r["split"])
    assert len(by_patient) == 4 and all(len(s) == 1 for s in by_patient.values())
    assert sorted(s.pop() for s in by_patient.values()) == ["test", "train", "train", "val"]
    assert len(rows(tmp_path / "ds" / "reports.csv")) == 12
    refused = invoke(["dataset", "build", tmp_path / "ecgs", "--out", tmp_path / "ds"])
    assert refused.exit_code == 1 and "--force" in refused.output


def test_report_field_rule():
    from ecgreport.dataset.build import report_from_comments

    comments = ["<age>: 51", "<diagnoses>:", "Rhythm: Sinus bradycardia.", "Left ventricular hypertrophy.",
                "<sex>: F", "Dx: 426177001", "Extra note."]
    assert report_from_comments(comments) == ("Rhythm: Sinus bradycardia. Left ventricular hypertrophy. "
                                              "Dx: 426177001 Extra note.")
    # a named field runs to the next <field>: its plain 'Key: value' lines are report text
    assert report_from_comments(comments, "diagnoses") == "Rhythm: Sinus bradycardia. Left ventricular hypertrophy."
    assert report_from_comments(comments, "Dx") == "426177001 Extra note."
    assert report_from_comments(comments, "age") == "51"


@pytest.mark.parametrize("text, expected", [
    ("record_id,SR,AFIB\nr1,1,0\nr2,1,yes\n", "line 3"),
    ("record_id,SR,XYZ\nr1,1,0\n", "XYZ"),
    ("id,SR\nr1,1\n", "first column must be record_id"),
    ("record_id,SR\n", "no records"),
])
def test_truth_table_errors_name_the_problem(tmp_path, text, expected):
    from ecgreport.errors import DataError
    from ecgreport.evaluation.truth import read_truth

    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=expected):
        read_truth(path, ["SR", "AFIB", "LAD"], "syn")
    with pytest.raises(DataError, match="no label set 'other'"):
        read_truth(path, None, "other")


def test_truth_table_reads_ids_and_classes(tmp_path):
    from ecgreport.evaluation.truth import read_truth

    path = tmp_path / "truth.csv"
    path.write_text("record_id,LAD,SR\npatient 7/ecg x,1,0\nABC-1,0,1\n")
    ids, classes, y = read_truth(path, ["SR", "AFIB", "LAD"], "syn")
    assert ids == ["patient 7/ecg x", "ABC-1"] and classes == ["LAD", "SR"]
    np.testing.assert_array_equal(y, [[True, False], [False, True]])
