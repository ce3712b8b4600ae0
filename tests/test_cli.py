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

    def open_model(bundle_path, device, workers=0):
        runner = FakeRunner(**Made.options)
        Made.runners.append(runner)
        return runner.bundle, runner

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

    def broken(bundle_path, device, workers=0):
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

    def crash(bundle_path, device, workers=0):
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


# ---------------------------------------------------------------- help at 80 columns

COMMANDS = ["batch", "info", "train", "export-onnx", "evaluate"]


def _click_app():
    return typer.main.get_command(APP)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_readable_at_80_columns(command):
    args = [command, "--help"] if command else ["--help"]
    result = CliRunner(env={"COLUMNS": "80"}).invoke(APP, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    usage = lines[0]
    assert usage.startswith("Usage: ") and "{" not in usage and "}" not in usage, usage
    if command in ("batch", "export-onnx"):
        assert usage.endswith("[OPTIONS] FOLDER" if command == "batch" else "[OPTIONS] CHECKPOINT")
    assert "<bool>" not in result.stdout and "<list[" not in result.stdout
    for line in lines:
        assert len(line) <= 80, f"wider than 80 columns: {line!r}"
        # textwrap breaks at hyphens: a line ending in "word-" cut a word in two
        assert not (line.rstrip().endswith("-") and line.rstrip()[-2:-1].isalpha()), line
    # Descriptions start by column 40, so they have at least 38 columns (rich's boxes
    # left 12): every continuation line of the option list is indented 40 or less.
    if "Options:" in lines:
        for line in lines[lines.index("Options:") + 1:]:
            if line.strip() and not line.lstrip().startswith("-"):
                assert len(line) - len(line.lstrip()) <= 40, line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_description(command):
    cmd = _click_app().commands[command]
    for param in cmd.params:
        assert (param.help or "").strip(), f"{command} {param.name} has no help text"
    flags = [p for p in cmd.params if getattr(p, "is_flag", False)]
    assert flags, "every command has at least --help-like flags to check"


def test_group_help_lists_each_command_and_the_exit_codes():
    result = CliRunner(env={"COLUMNS": "80"}).invoke(APP, ["--help"])
    text = " ".join(result.stdout.split())
    for command in COMMANDS:
        assert f" {command} " in text
    commands = result.stdout[result.stdout.index("Commands:"):]
    assert "..." not in commands  # no command summary cut short
    for code in ExitCode:
        assert f"{int(code)} " in text


def test_export_help_explains_its_defaults_and_the_shipped_bundles():
    result = CliRunner(env={"COLUMNS": "80"}).invoke(APP, ["export-onnx", "--help"])
    text = " ".join(result.stdout.split())
    assert "[default: knn]" in text and "[default: consensus]" in text
    assert "shipped bundle uses --scoring direct and --report-method decoder" in text
    assert "fold 9" in text


# ---------------------------------------------------------------- one exit-code table


def _app_raising(err: BaseException) -> typer.Typer:
    """A one-command app whose command raises ``err``, wrapped by the CLI's handler."""
    from ecgreport.cli import handle_errors

    app = typer.Typer()

    @app.command()
    @handle_errors
    def boom() -> None:
        raise err

    @app.command()
    def other() -> None:  # a second command, so that typer keeps the command name
        pass

    return app


@pytest.mark.parametrize("err, code", [
    ("UsageError", ExitCode.USAGE),
    ("LabelsFileError", ExitCode.USAGE),
    ("BundleError", ExitCode.BAD_BUNDLE),
    ("RecordError", ExitCode.SOME_RECORDS_FAILED),
    ("DataError", ExitCode.FATAL),
    ("MissingExtraError", ExitCode.FATAL),
    ("EcgReportError", ExitCode.FATAL),
])
def test_each_error_class_carries_one_exit_code(err, code):
    import ecgreport.errors as errors

    cls = getattr(errors, err)
    assert errors.exit_code_for(cls("x")) == code
    result = CliRunner().invoke(_app_raising(cls("where: what went wrong")), ["boom"])
    assert result.exit_code == code
    assert result.stderr == "error: where: what went wrong\n" and result.stdout == ""


def test_other_exceptions_are_fatal_in_one_line():
    result = CliRunner().invoke(_app_raising(ValueError("a bug")), ["boom"])
    assert result.exit_code == ExitCode.FATAL
    assert result.stderr.startswith("error: ValueError: a bug (run `ecgreport -v boom ...`")
    assert "Traceback" not in result.output
    result = CliRunner().invoke(_app_raising(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == ExitCode.INTERRUPTED and "Traceback" not in result.output


def test_messages_are_never_read_as_markup():
    from ecgreport.errors import MissingExtraError

    err = MissingExtraError.train("[bold]this[/bold]")
    result = CliRunner().invoke(_app_raising(err), ["boom"])
    assert 'pip install "ecgreport[train]"' in result.stderr
    assert "[bold]this[/bold]" in result.stderr


def test_train_without_the_extra_prints_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ecgreport.training.loop", None)  # import fails
    result = invoke("train", "--data", tmp_path, "--out", tmp_path / "run")
    assert result.exit_code == ExitCode.FATAL
    assert 'training needs the train extra: pip install "ecgreport[train]"' in result.stderr


def _touch(path: Path) -> Path:
    path.write_text("not a folder\n")
    return path


def test_out_naming_a_file_is_a_usage_error_in_every_command(tmp_path, fake_model):
    twelve_lead(tmp_path / "in", "a")
    out = _touch(tmp_path / "out.txt")
    checkpoint = _touch(tmp_path / "best.pt")
    for args in (["batch", tmp_path / "in", "--out", out],
                 ["train", "--data", tmp_path / "in", "--out", out],
                 ["export-onnx", checkpoint, "--out", out]):
        result = invoke(*args)
        assert result.exit_code == ExitCode.USAGE, (args, result.output)
        assert f"--out {out} is a file, not a folder" in " ".join(result.stderr.split())
    result = invoke("evaluate", "--data", tmp_path / "in", "--json", tmp_path)
    assert result.exit_code == ExitCode.USAGE and "is a folder" in result.stderr


def test_the_same_error_has_the_same_code_in_evaluate_and_export(tmp_path, monkeypatch):
    """A ValueError was exit 5 in export-onnx and 2 in evaluate: now any command maps an
    exception the same way (here: a bug is 1, a bad --labels file 2)."""
    import ecgreport.evaluation.run as run_module

    def crash(*args, **kwargs):
        raise ValueError("something broke")

    monkeypatch.setattr(run_module, "evaluate", crash)
    (tmp_path / "data").mkdir()
    result = invoke("evaluate", "--data", tmp_path / "data", "-q")
    assert result.exit_code == ExitCode.FATAL and "ValueError: something broke" in result.stderr
    bad_labels = tmp_path / "labels.csv"
    bad_labels.write_text("label;description\n")
    for args in (["export-onnx", _touch(tmp_path / "best.pt"), "--out", tmp_path / "b"],
                 ["batch", tmp_path / "data", "--out", tmp_path / "o"]):
        result = invoke(*args, "--labels", bad_labels)
        assert result.exit_code == ExitCode.USAGE, result.output


def test_a_file_that_is_not_a_checkpoint_is_one_line_exit_5(tmp_path):
    pytest.importorskip("torch")
    result = invoke("export-onnx", _touch(tmp_path / "best.pt"), "--out", tmp_path / "bundle")
    assert result.exit_code == ExitCode.BAD_BUNDLE, result.output
    assert "best.pt: not a readable training checkpoint" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_the_text_models_progress_bars_never_show(tmp_path):
    """`Loading weights: 100%|...` from transformers appeared on stderr with --labels."""
    pytest.importorskip("transformers")
    code = ("from ecgreport.model.text_encoder import TextEncoder\n"
            "TextEncoder().embed(['sinus rhythm'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr and "it/s" not in result.stderr, result.stderr


# ---------------------------------------------------------------- README


def test_readme_exit_code_table_is_the_one_in_errors():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Exit codes"):readme.index("### Many machines")]
    codes = [int(line.split("|")[1]) for line in section.splitlines()
             if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert codes == [int(code) for code in ExitCode]


def test_readme_slurm_example_works_for_0_based_array_ids():
    from ecgreport.batch import UsageError, parse_shard

    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("ecgreport batch") and "SLURM" in ln)
    shard_arg = line.split("--shard ", 1)[1].split()[0]
    shards = set()
    for task_id in range(4):  # sbatch --array=0-3
        expanded = subprocess.run(["bash", "-c", f"echo {shard_arg}"], capture_output=True, text=True,
                                  env={"SLURM_ARRAY_TASK_ID": str(task_id)}, check=True).stdout.strip()
        shards.add(parse_shard(expanded))
    assert shards == {(1, 4), (2, 4), (3, 4), (4, 4)}
    with pytest.raises(UsageError, match=r"counts K from 1.*\$\(\(INDEX\+1\)\)/N"):
        parse_shard("0/4")
