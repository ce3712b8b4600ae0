"""`ecgreport batch` end to end: a real exported bundle (the tiny model trained on
ptb-xl-mini) on every fixture record, PTB-XL at 100 and 500 Hz and Challenge 2021 .mat files.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, skip_without_fixtures
from ecgreport.cli import app
from ecgreport.onnx.runtime import choose_providers, load_bundle
from ecgreport.outputs import writers
from ecgreport.records import find_records

pytestmark = [skip_without_fixtures, pytest.mark.usefixtures("one_torch_thread", "text_cache")]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_batch_on_every_fixture_record(tmp_path, tiny_bundle):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(FIXTURES), "--model", str(tiny_bundle), "--out", str(out)])
    assert result.exit_code == 0, result.output

    expected = {ref.record_id for ref in find_records(FIXTURES)}
    # 17 PTB-XL records at 100 Hz, their 500 Hz twins of ids 1-10, 10 Challenge records
    assert len(expected) == len(list(FIXTURES.rglob("*.hea"))) == 17 + 10 + 10
    entries = read_jsonl(out / writers.RECORDS_JSONL)
    assert sorted(e["record_id"] for e in entries) == sorted(expected)
    assert [e["record_id"] for e in entries if e["status"] != "ok"] == []
    assert {e["fs_hz"] for e in entries} == {100.0, 500.0}
    for e in entries:
        assert e["n_windows"] >= 1 and e["missing_leads"] == [], e["record_id"]
        assert isinstance(e["report"], str) and e["report"], e["record_id"]

    bundle = load_bundle(tiny_bundle)
    label_columns = [f"{name}:{label}" for name, labels in bundle.label_sets.items() for label in labels]
    with (out / writers.DIAGNOSES_CSV).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    assert header == ["record_id", "status", "quality", "signal_checks", "missing_leads",
                      "derived_leads", *label_columns, "top_findings", "error"]
    assert sorted(r[0] for r in rows) == sorted(expected)
    for row in rows:
        assert len(row) == len(header)
        assert row[1] == "ok"
        for value in row[6:6 + len(label_columns)]:
            assert -1.0 - 1e-5 <= float(value) <= 1.0 + 1e-5  # cosine similarities

    for e in entries:
        text = writers.report_path(out, e["record_id"]).read_text(encoding="utf-8")
        assert e["report"] in text
    n_reports = len(list((out / writers.REPORTS_DIR).rglob("*.txt")))
    assert n_reports == len(expected)

    run = json.loads((out / writers.RUN_JSON).read_text())
    assert run["status"] == "completed"
    assert run["counts"] == {"records": 37, "ok": 37, "failed": 0, "resumed": 0, "not_processed": 0}
    assert run["bundle"]["manifest_sha256"] == bundle.manifest_sha256


def test_batch_device_cuda_without_gpu_runs_on_cpu_and_says_so(tmp_path, tiny_bundle):
    """In a subprocess, so that what onnxruntime's C++ side writes to stderr is seen too."""
    if choose_providers("cuda")[0][0] == "CUDAExecutionProvider":
        pytest.skip("a usable CUDA provider is present: nothing to fall back from")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "ecgreport", "batch", str(FIXTURES / "challenge-2021"), "--model", str(tiny_bundle),
         "--out", str(out), "--device", "cuda", "--beams", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # data goes to files, people-messages to stderr
    run = json.loads((out / writers.RUN_JSON).read_text())
    assert run["execution_provider"] == "CPUExecutionProvider"
    assert "running on the CPU" in run["execution_note"]
    assert run["counts"]["ok"] == 10
    lines = proc.stderr.splitlines()
    # one line explains the fallback, and no onnxruntime/CUDA library noise comes with it
    assert len([line for line in lines if line.startswith("note:")]) == 1
    noise = [line for line in lines if not line.startswith("note:")
             and re.search(r"CUDA|cuDNN|cudnn|libcu|onnxruntime", line)]
    assert noise == []
