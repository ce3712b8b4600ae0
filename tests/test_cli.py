"""The `batch` and `info` commands: exit codes, stdout/stderr, help, and no torch import.

The model is the fake runner of test_batch.py, put in place of ``open_model``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conftest import ecg_like, write_record
from ecgreport.errors import BundleError, ExitCode
from test_batch import LABEL_SETS, FakeBundle, FakeRunner, read_outputs, twelve_lead

REPO = Path(__file__).resolve().parents[1]


def _app() -> typer.Typer:
    """The real CLI app; while some command modules are not written yet, a local app
    with the batch and info commands."""
    try:
        from ecgreport.cli import app
        return app
    except ImportError:
        from ecgreport.commands import batch, info

        app = typer.Typer()
        app.command("batch")(batch.batch)
        app.command("info")(info.info)
        return app


APP = _app()


def invoke(*args: str):
    return CliRunner().invoke(APP, [str(a) for a in args])


@pytest.fixture
def fake_model(monkeypatch):
    """Every run loads the fake model; the runners made are collected for inspection."""
    import ecgreport.batch as batch_module

    class Made:
        runners: list[FakeRunner] = []
        options: dict = {}  # FakeRunner arguments for the next runs

    def open_model(bundle_path, device, workers=0, warmup_rows=1):
        runner = FakeRunner(**Made.options)
        Made.runners.append(runner)
        return runner.bundle, runner, getattr(runner, "note", None)

    monkeypatch.setattr(batch_module, "open_model", open_model)
    Made.runners, Made.options = [], {}
    return Made


def test_batch_ok_writes_files_and_nothing_on_stdout(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a")
    twelve_lead(tmp_path / "in", "b", seed=1)
    result = invoke("batch", tmp_path / "in", "--out", tmp_path / "out")
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout == ""
    assert "2 ok, 0 failed" in result.stderr and str(tmp_path / "out") in result.stderr
    rows, _, entries, run_json = read_outputs(tmp_path / "out")
    assert len(rows) == len(entries) == 2 and run_json["counts"]["ok"] == 2


def test_quiet_is_silent(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a")
    twelve_lead(tmp_path / "in", "short", seconds=2)
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "-q")
    assert result.exit_code == ExitCode.SOME_RECORDS_FAILED
    assert result.stdout == "" and result.stderr == ""


def test_some_failed_exit_3_with_one_line_per_failure(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a")
    twelve_lead(tmp_path / "in", "short", seconds=2)
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.SOME_RECORDS_FAILED
    failed = [ln for ln in result.stderr.splitlines() if ln.startswith("failed ")]
    assert failed == ["failed short.hea: record too short: 2.00 s, the minimum is 5 s"]
    assert "1 ok, 1 failed" in result.stderr


def test_fail_fast_exit_3(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a_short", seconds=2)
    twelve_lead(tmp_path / "in", "b")
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--fail-fast")
    assert result.exit_code == ExitCode.SOME_RECORDS_FAILED
    assert "1 not processed (--fail-fast)" in result.stderr
    assert fake_model.runners[0].encode_calls == 0


def test_no_records_exit_4(tmp_path, fake_model):
    (tmp_path / "in").mkdir()
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.NO_RECORDS
    assert "no WFDB records" in result.stderr and not (tmp_path / "out").exists()


def test_missing_bundle_exit_5(tmp_path):
    twelve_lead(tmp_path / "in", "a")
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "-m", tmp_path / "none")
    assert result.exit_code == ExitCode.BAD_BUNDLE
    assert "model bundle not found" in result.stderr


def test_invalid_bundle_exit_5(tmp_path, monkeypatch):
    import ecgreport.batch as batch_module

    def broken(bundle_path, device, workers=0, warmup_rows=1):
        raise BundleError("export/encoder.onnx: sha256 does not match the manifest")

    monkeypatch.setattr(batch_module, "open_model", broken)
    twelve_lead(tmp_path / "in", "a")
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.BAD_BUNDLE
    assert "encoder.onnx: sha256 does not match" in result.stderr


@pytest.mark.parametrize("extra, message", [
    (["--shard", "3/2"], "1 <= K <= N"),
    (["--shard", "half"], "K/N"),
    (["--resume", "--overwrite"], "exclude each other"),
    (["--device", "tpu"], "--device must be one of"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
])
def test_usage_errors_exit_2(tmp_path, fake_model, extra, message):
    twelve_lead(tmp_path / "in", "a")
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", *extra)
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr


def test_existing_outputs_exit_2_then_resume_and_overwrite(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a")
    assert invoke("batch", tmp_path / "in", "-o", tmp_path / "out").exit_code == 0
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.USAGE
    assert "--resume" in result.stderr and "--overwrite" in result.stderr
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--resume")
    assert result.exit_code == ExitCode.OK and "(1 from the earlier run)" in result.stderr
    assert fake_model.runners[-1].encode_calls == 0
    assert invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--overwrite").exit_code == 0
    assert fake_model.runners[-1].encode_calls == 1


def test_interrupt_exit_130_then_resume(tmp_path, fake_model):
    for i in range(3):
        twelve_lead(tmp_path / "in", f"r{i}", seed=i)
    fake_model.options["interrupt_on_call"] = 2
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--batch-size", "1")
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "--resume" in result.stderr
    _, _, entries, run_json = read_outputs(tmp_path / "out")
    assert [e["record_id"] for e in entries] == ["r0"] and run_json["status"] == "interrupted"
    fake_model.options.clear()
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--resume")
    assert result.exit_code == ExitCode.OK and fake_model.runners[-1].encoded_windows == 2


def test_labels_without_text_model_exit_1(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a")
    (tmp_path / "labels.csv").write_text("label,description\nLVH,left ventricular hypertrophy\n")
    fake_model.options["text_model"] = False
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--labels",
                    tmp_path / "labels.csv")
    assert result.exit_code == ExitCode.FATAL
    assert "pip install ecgreport[train]" in result.stderr


def test_unexpected_error_exit_1(tmp_path, monkeypatch):
    import ecgreport.batch as batch_module

    def crash(bundle_path, device, workers=0, warmup_rows=1):
        raise OSError("disk full")

    monkeypatch.setattr(batch_module, "open_model", crash)
    twelve_lead(tmp_path / "in", "a")
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.FATAL and "OSError: disk full" in result.stderr


def test_header_comments_flag(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a", comments=["Age: 61"])
    invoke("batch", tmp_path / "in", "-o", tmp_path / "plain")
    invoke("batch", tmp_path / "in", "-o", tmp_path / "with", "--include-header-comments")
    assert "Age" not in (tmp_path / "plain" / "records.jsonl").read_text()
    assert "Age: 61" in (tmp_path / "with" / "records.jsonl").read_text()


def test_shard_option(tmp_path, fake_model):
    for i in range(3):
        write_record(tmp_path / "in", f"r{i}", ecg_like(1000, 12, seed=i),
                     ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    assert invoke("batch", tmp_path / "in", "-o", tmp_path / "s2", "--shard", "2/2").exit_code == 0
    _, _, entries, _ = read_outputs(tmp_path / "s2")
    assert [e["record_id"] for e in entries] == ["r1"]


# ---------------------------------------------------------------- info


@pytest.fixture
def fake_bundle(monkeypatch):
    import ecgreport.commands.info as info_module

    bundle = FakeBundle(manifest={"input": {"units": "mV", "normalisation": "median removed"}})
    monkeypatch.setattr(info_module, "load_bundle", lambda model: bundle)
    return bundle


def test_info_json(fake_bundle):
    result = invoke("info", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["input"]["fs_hz"] == 100 and info["input"]["window_samples"] == 1000
    assert info["input"]["window_s"] == 10 and info["input"]["leads"][3] == "aVR"
    assert info["input"]["units"] == "mV" and info["input"]["normalisation"] == "median removed"
    assert [x["label"] for x in info["label_sets"]["superclass"]] == LABEL_SETS["superclass"]
    assert info["label_sets"]["rhythm"][1] == {"label": "AFIB", "description": "atrial fibrillation",
                                               "prompts": []}  # the fake bundle has no prompts


def test_info_tables(fake_bundle):
    result = invoke("info")
    assert result.exit_code == 0
    for text in ("100 Hz", "1000 samples = 10 s", "aVR", "median removed", "superclass",
                 "myocardial infarction", "atrial fibrillation"):
        assert text in result.stdout
    assert "f" * 64 in result.stdout.replace("│", "").replace("\n", "").replace(" ", "")


def test_info_missing_bundle_exit_5(tmp_path):
    result = invoke("info", "--model", tmp_path / "none")
    assert result.exit_code == ExitCode.BAD_BUNDLE and "not found" in result.stderr


# ---------------------------------------------------------------- help, imports


@pytest.mark.parametrize("command, needle", [("batch", "Examples"), ("info", "Examples")])
def test_help_teaches(command, needle):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # as the terminal's width wrapped it
    assert needle in text and "--help" in text
    if command == "batch":
        for words in ("--resume", "--shard", "not probabilities", "Exit codes", "130 interrupted",
                      "ecgreport[train]"):
            assert words in text


def test_batch_path_does_not_import_torch():
    modules = ["ecgreport.batch", "ecgreport.commands.batch", "ecgreport.commands.info",
               "ecgreport.outputs.writers", "ecgreport.outputs.sink", "ecgreport.outputs.merge",
               "ecgreport.onnx.runtime", "ecgreport.cli"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as err:\n"
        "        if name != 'ecgreport.cli' or 'torch' in str(err):\n"
        "            raise\n"  # the CLI may wait for command modules written by others
        "assert 'ecgreport.batch' in sys.modules\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
