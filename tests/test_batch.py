"""The batch pipeline with a fake model: outputs, bad inputs, windows, resume, shards.

The fake runner has the ModelRunner API and deterministic numbers computed from its
input, so a test can tell which windows reached the model and check the aggregation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import FIXTURES, ecg_like, skip_without_fixtures, write_record
from ecgreport import DISCLAIMER
from ecgreport.batch import BatchOptions, BatchSummary, UsageError, parse_shard, run_batch
from ecgreport.pipeline import aggregate_windows
from ecgreport.errors import BundleError, EcgReportError, ExitCode
from ecgreport.leads import STANDARD_LEADS
from ecgreport.outputs import writers
from ecgreport.outputs.merge import main as merge_main
from ecgreport.records import find_records

PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
LABEL_SETS = {"superclass": ["NORM", "MI", "STTC", "CD", "HYP"], "rhythm": ["SR", "AFIB"]}
DIM = 16


@dataclass
class FakeBundle:
    path: Path = Path("fake-bundle")
    manifest: dict = field(default_factory=lambda: {"input": {"units": "mV"}})
    manifest_sha256: str = "f" * 64
    fs_hz: float = 100.0
    window_samples: int = 1000
    leads: list = field(default_factory=lambda: list(STANDARD_LEADS))
    label_sets: dict = field(default_factory=lambda: {k: list(v) for k, v in LABEL_SETS.items()})
    label_descriptions: dict = field(default_factory=lambda: {
        "superclass": {"NORM": "normal ECG", "MI": "myocardial infarction"},
        "rhythm": {"SR": "sinus rhythm", "AFIB": "atrial fibrillation"}})
    scoring: str = "direct"
    report_method: str = "decoder"
    label_prompts: dict = field(default_factory=dict)

    @property
    def units(self) -> str:
        return self.manifest["input"].get("units", "mV")

    @property
    def normalisation(self) -> str | None:
        return self.manifest["input"].get("normalisation")


@dataclass
class FakeEncoded:
    embedding: np.ndarray
    windows: np.ndarray

    def take(self, rows) -> "FakeEncoded":
        return FakeEncoded(self.embedding[rows], self.windows[rows])


class FakeRunner:
    """Embedding: per-lead standard deviation and mean |diff| of the window (plus a constant
    so a flat window has one), unit length. Label embeddings: fixed random unit vectors."""

    provider = "FakeExecutionProvider"

    def __init__(self, bundle: FakeBundle | None = None, interrupt_on_call: int | None = None,
                 text_model: bool = True):
        self.bundle = bundle or FakeBundle()
        self.interrupt_on_call = interrupt_on_call
        self.text_model = text_model
        self.encode_calls = 0
        self.encoded_windows = 0
        self.encoded_batches: list[np.ndarray] = []  # embeddings of every encode call
        rng = np.random.default_rng(0)
        self.label_vectors = {name: _unit(rng.normal(size=(len(labels), DIM)))
                              for name, labels in self.bundle.label_sets.items()}
        self.added: dict[str, tuple[list, list]] = {}

    def encode(self, x: np.ndarray) -> FakeEncoded:
        self.encode_calls += 1
        if self.interrupt_on_call is not None and self.encode_calls >= self.interrupt_on_call:
            raise KeyboardInterrupt
        assert x.dtype == np.float32 and x.shape[1:] == (12, self.bundle.window_samples)
        self.encoded_windows += len(x)
        features = np.concatenate([x.std(axis=2), np.abs(np.diff(x, axis=2)).mean(axis=2)[:, :3],
                                   np.ones((len(x), 1), np.float32)], axis=1)
        embedding = _unit(features)
        self.encoded_batches.append(embedding)
        return FakeEncoded(embedding, x)

    def generate(self, enc: FakeEncoded, max_tokens: int = 64, beams: int = 1) -> list[str]:
        return [f"fake report {e[0]:.6f}" for e in enc.embedding]

    def write_reports(self, enc: FakeEncoded, embedding: np.ndarray, max_tokens: int = 64,
                      beams: int = 1) -> list[dict]:
        assert len(embedding) == len(enc.embedding)
        return [{"report": r, "decoder_report": r, "similar_training_report": None}
                for r in self.generate(enc, max_tokens, beams)]

    def scores(self, embedding: np.ndarray) -> dict[str, np.ndarray]:
        assert embedding.ndim == 2 and embedding.shape[1] == DIM
        np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)
        return {name: embedding @ vectors.T for name, vectors in self.label_vectors.items()}

    def add_label_set(self, name: str, labels: list[str], descriptions: list[str],
                      prompts: list[list[str]] | None = None) -> None:
        if not self.text_model:
            raise RuntimeError("the text model is not installed: pip install ecgreport[train]")
        self.added[name] = (labels, descriptions, prompts)
        rng = np.random.default_rng(1)
        self.label_vectors[name] = _unit(rng.normal(size=(len(labels), DIM)))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- helpers


def twelve_lead(directory: Path, name: str, seconds: float = 10, fs_hz: float = 100,
                seed: int = 0, comments: list[str] | None = None) -> Path:
    n = int(seconds * fs_hz)
    hea = write_record(directory, name, ecg_like(n, 12, fs_hz=fs_hz, seed=seed), PTBXL_NAMES,
                       fs_hz=fs_hz)
    if comments:
        with open(hea, "a", encoding="utf-8") as f:
            f.writelines(f"# {c}\n" for c in comments)
    return hea


def good_folder(root: Path, n: int = 3) -> Path:
    for i in range(n):
        twelve_lead(root / f"site{i % 2}", f"ecg{i}", seed=i)
    return root


def run(folder: Path, out: Path, runner: FakeRunner | None = None, **kwargs) -> BatchSummary:
    kwargs.setdefault("quiet", True)
    kwargs.setdefault("read_workers", 1)
    console = kwargs.pop("console", None)
    return run_batch(BatchOptions(folder, out, **kwargs), console=console,
                     runner=runner or FakeRunner())


def read_outputs(out: Path) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(CSV header+rows as dicts, the raw CSV header, JSONL entries, run.json)."""
    with open(out / "diagnoses.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]  # every line must parse
    return rows, header, entries, json.loads((out / "run.json").read_text())


def no_temp_files(out: Path) -> bool:
    return not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def columns() -> list[str]:
    return [f"{s}:{label}" for s, labels in LABEL_SETS.items() for label in labels]


# ---------------------------------------------------------------- outputs


def test_outputs_present_and_well_formed(tmp_path):
    folder = good_folder(tmp_path / "in", 3)
    out = tmp_path / "out"
    summary = run(folder, out)
    assert (summary.n_records, summary.n_ok, summary.n_failed) == (3, 3, 0)
    assert summary.exit_code == ExitCode.OK

    rows, header, entries, run_json = read_outputs(out)
    assert header == [*writers.CSV_HEAD, *columns(), "top_findings", "error"]
    assert [r["record_id"] for r in rows] == ["site0/ecg0", "site0/ecg2", "site1/ecg1"]
    assert all(r["status"] == "ok" and r["error"] == "" for r in rows)
    for row in rows:
        for column in columns():
            value = row[column]
            assert len(value.split(".")[1]) == 4 and -1 <= float(value) <= 1
    assert [e["record_id"] for e in entries] == [r["record_id"] for r in rows]
    entry = entries[0]
    assert entry["status"] == "ok" and entry["error"] is None and entry["fs_hz"] == 100
    assert entry["leads_found"] == PTBXL_NAMES and entry["missing_leads"] == []
    assert entry["duration_s"] == 10.0 and entry["n_windows"] == 1
    assert entry["report"].startswith("fake report")
    assert set(entry["scores"]) == set(LABEL_SETS)
    assert list(entry["scores"]["superclass"]) == LABEL_SETS["superclass"]
    top = entry["top_findings"]
    assert len(top) == 5
    sims = [f["similarity"] for f in top]
    assert sims == sorted(sims, reverse=True)
    for finding in top:  # each finding's rank is its rank within its own set
        within = sorted(entry["scores"][finding["set"]].values(), reverse=True)
        assert within[finding["rank"] - 1] == finding["similarity"]
    # The CSV holds the same numbers as the JSONL.
    assert float(rows[0]["superclass:MI"]) == entry["scores"]["superclass"]["MI"]
    assert run_json["counts"] == {"records": 3, "ok": 3, "failed": 0, "resumed": 0,
                                  "not_processed": 0}
    assert run_json["status"] == "completed"
    assert run_json["bundle"]["manifest_sha256"] == "f" * 64
    assert run_json["execution_provider"] == "FakeExecutionProvider"
    assert run_json["arguments"]["batch_size"] == 64 and run_json["wall_time_s"] > 0

    report = (out / "reports" / "site0" / "ecg0.txt").read_text(encoding="utf-8")
    assert DISCLAIMER in report and "site0/ecg0" in report
    assert entry["report"] in report and "NOT probabilities" in report
    first = top[0]
    assert (f"{first['label']}" in report
            and f"{first['similarity']:.4f}, rank {first['rank']} of" in report)
    assert sorted(p.relative_to(out / "reports").as_posix() for p in
                  (out / "reports").rglob("*.txt")) == ["site0/ecg0.txt", "site0/ecg2.txt",
                                                        "site1/ecg1.txt"]
    assert no_temp_files(out)


def test_descriptions_in_report(tmp_path):
    twelve_lead(tmp_path / "in", "r")
    run(tmp_path / "in", tmp_path / "out", top_k=7)
    report = (tmp_path / "out" / "reports" / "r.txt").read_text()
    assert "NORM (normal ECG): " in report and "SR (sinus rhythm): " in report


def test_bad_inputs_do_not_stop_the_batch(tmp_path):
    folder = tmp_path / "in"
    twelve_lead(folder, "a_good")
    hea = twelve_lead(folder, "b_truncated")
    dat = folder / "b_truncated.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    (folder / "c_junk.hea").write_text("this is not\na WFDB header ((\n")
    write_record(folder, "d_one_lead", ecg_like(1000, 1), ["II"])
    twelve_lead(folder, "e_two_seconds", seconds=2)
    write_record(folder, "f_all_nan", np.full((1000, 12), np.nan), PTBXL_NAMES)
    (folder / "g_empty.hea").write_text("g_empty 1 100 0\ng_empty.dat 16 200(0)/mV 16 0 0 0 0 II\n")
    (folder / "g_empty.dat").write_bytes(b"")
    odd = twelve_lead(folder, "h_odd")  # renamed to a non-UTF-8 file name: still read
    os.rename(os.fsencode(odd), os.path.join(os.fsencode(folder), b"h_caf\xe9.hea"))
    assert hea.exists()
    stderr = io.StringIO()
    summary = run(folder, tmp_path / "out", quiet=False,
                  console=Console(file=stderr, width=300, color_system=None))

    rows, _, entries, run_json = read_outputs(tmp_path / "out")
    status = {e["record_id"]: e["status"] for e in entries}
    assert status == {"a_good": "ok", "b_truncated": "failed", "c_junk": "failed",
                      "d_one_lead": "failed", "e_two_seconds": "failed", "f_all_nan": "failed",
                      "g_empty": "failed", "h_caf\\xe9": "ok"}
    errors = {e["record_id"]: e["error"] for e in entries}
    assert "b_truncated.hea: signal file b_truncated.dat is truncated" in errors["b_truncated"]
    assert errors["c_junk"].startswith("c_junk.hea: header line 1 (record line): number of signals")
    assert errors["e_two_seconds"] == ("e_two_seconds.hea: record too short: 2.00 s, "
                                       "the minimum is 5 s")
    assert errors["f_all_nan"].startswith("f_all_nan.hea: ")
    assert errors["g_empty"].startswith("g_empty.hea: ")
    # Below --min-leads (6 by default); tests/test_checks_batch.py runs it with fewer.
    assert errors["d_one_lead"] == ("d_one_lead.hea: too few leads: 1 usable of the 12 standard "
                                    "leads (II; the record holds II), at least 6 needed "
                                    "(--min-leads)")
    assert (summary.n_ok, summary.n_failed) == (2, 6)
    assert summary.exit_code == ExitCode.SOME_RECORDS_FAILED
    assert run_json["counts"]["failed"] == 6 and len(rows) == 8
    failed_rows = [r for r in rows if r["status"] == "failed"]
    assert all(r["error"] and r["superclass:NORM"] == "" for r in failed_rows)
    assert not (tmp_path / "out" / "reports" / "b_truncated.txt").exists()
    # One line per failed record on stderr, naming its file and the reason.
    lines = [ln for ln in stderr.getvalue().splitlines() if ln.startswith("failed ")]
    assert len(lines) == 6
    assert "failed e_two_seconds.hea: record too short: 2.00 s, the minimum is 5 s" in lines


def test_fail_fast_stops_at_the_first_bad_record(tmp_path):
    folder = tmp_path / "in"
    twelve_lead(folder, "a")
    twelve_lead(folder, "b_short", seconds=2)
    twelve_lead(folder, "c")
    twelve_lead(folder, "d")
    summary = run(folder, tmp_path / "out", fail_fast=True)
    assert (summary.n_ok, summary.n_failed, summary.n_not_processed) == (1, 1, 2)
    assert summary.exit_code == ExitCode.SOME_RECORDS_FAILED
    _, _, entries, run_json = read_outputs(tmp_path / "out")
    assert [e["record_id"] for e in entries] == ["a", "b_short"]
    assert run_json["status"] == "stopped by --fail-fast"
    assert run_json["counts"]["not_processed"] == 2


def test_no_records_writes_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no ECGs here")
    summary = run(tmp_path / "in", tmp_path / "out")
    assert summary.n_records == 0 and summary.exit_code == ExitCode.NO_RECORDS
    assert not (tmp_path / "out").exists()


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file or directory"):
        run(tmp_path / "nope", tmp_path / "out")


def test_missing_bundle_is_a_bundle_error(tmp_path):
    twelve_lead(tmp_path / "in", "r")
    with pytest.raises(BundleError, match="model bundle not found: .*no-bundle"):
        run_batch(BatchOptions(tmp_path / "in", tmp_path / "out", tmp_path / "no-bundle",
                               quiet=True))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "tpu"}, "--device must be one of auto, cpu, cuda"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"resume": True, "overwrite": True}, "exclude each other"),
    ({"shard": (3, 2)}, "1 <= K <= N"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    twelve_lead(tmp_path / "in", "r")
    with pytest.raises(UsageError, match=message):
        run(tmp_path / "in", tmp_path / "out", **kwargs)


def test_options_are_checked_once_frozen_and_written_to_run_json(tmp_path):
    import dataclasses

    options = BatchOptions(str(good_folder(tmp_path / "in", 1)), str(tmp_path / "out"),
                           shard=(1, 1), top_k=3, quiet=True, read_workers=1)
    assert isinstance(options.folder, Path) and isinstance(options.out_dir, Path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.top_k = 4
    run_batch(options, runner=FakeRunner())
    arguments = json.loads((tmp_path / "out" / "run.json").read_text())["arguments"]
    assert arguments == options.to_json()
    assert arguments["shard"] == "1/1" and arguments["top_k"] == 3
    assert set(arguments) == {f.name for f in dataclasses.fields(BatchOptions)}


def test_the_pipeline_imports_neither_of_its_callers():
    """Data flows one way: pipeline -> parallel -> batch; no import back, not even one
    inside a function."""
    import ast

    import ecgreport

    def imported(module: str) -> set[str]:
        path = Path(ecgreport.__file__).parent / f"{module}.py"
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
        return names

    assert not imported("pipeline") & {"ecgreport.batch", "ecgreport.parallel"}
    assert "ecgreport.batch" not in imported("parallel")
    assert "ecgreport.pipeline" in imported("parallel") | imported("batch")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path, umask, mode):
    good_folder(tmp_path / "in", 2)
    old = os.umask(umask)
    try:
        run(tmp_path / "in", tmp_path / "out")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    # two reports, their two pages (--pictures auto: all in a small run), the two logs,
    # run.json, index.html, measurements.csv
    assert len(files) == 9
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(mode)}


def test_paths_are_relative_to_the_input_folder_unless_asked(tmp_path):
    folder = good_folder(tmp_path / "in", 2)
    run(folder, tmp_path / "out")
    _, _, entries, _ = read_outputs(tmp_path / "out")
    assert [e["path"] for e in entries] == ["site0/ecg0.hea", "site1/ecg1.hea"]
    assert all("absolute_path" not in e for e in entries)
    for name in ("records.jsonl", "diagnoses.csv", "reports/site0/ecg0.txt"):
        assert str(tmp_path) not in (tmp_path / "out" / name).read_text(), name
    assert "File:     site0/ecg0.hea\n" in (tmp_path / "out/reports/site0/ecg0.txt").read_text()

    run(folder, tmp_path / "abs", absolute_paths=True)
    _, _, entries, run_json = read_outputs(tmp_path / "abs")
    assert [e["path"] for e in entries] == ["site0/ecg0.hea", "site1/ecg1.hea"]
    assert [e["absolute_path"] for e in entries] == [
        str((folder / "site0/ecg0.hea").resolve()), str((folder / "site1/ecg1.hea").resolve())]
    report = (tmp_path / "abs/reports/site0/ecg0.txt").read_text()
    assert f"Absolute: {(folder / 'site0/ecg0.hea').resolve()}\n" in report
    assert run_json["arguments"]["absolute_paths"] is True

    # One header given as the input: its path is its file name.
    run(folder / "site1" / "ecg1.hea", tmp_path / "one")
    assert [e["path"] for e in read_outputs(tmp_path / "one")[2]] == ["ecg1.hea"]


def test_plain_progress_lines_give_the_true_rate():
    from ecgreport.batch import PlainProgress

    now = [100.0]
    out = io.StringIO()
    with PlainProgress(Console(file=out, width=200), every_s=10, clock=lambda: now[0]) as p:
        task = p.add_task("ECGs", total=1000)
        now[0] += 4
        p.advance(task, 100)         # 4 s: no line yet
        now[0] += 6
        p.advance(task, 300)         # 10 s, 400 done: 40 ECG/s, 600 left -> 15 s
        now[0] += 15
        p.advance(task, 600)         # 25 s, all done
    assert out.getvalue().splitlines() == [
        "ECGs: 400/1000 (40%), 40.0 ECG/s, 0:00:15 left",
        "ECGs: 1000/1000 (100%), 40.0 ECG/s, in 25.0 s"]


def test_a_non_terminal_stderr_gets_plain_lines(tmp_path):
    good_folder(tmp_path / "in", 3)
    import time

    class SlowRunner(FakeRunner):
        def encode(self, x):
            time.sleep(0.2)
            return super().encode(x)

    stderr = io.StringIO()
    run(tmp_path / "in", tmp_path / "out", SlowRunner(), batch_size=1, quiet=False,
        console=Console(file=stderr, width=100))
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ECGs: 3/3 (100%), ")
    rate, seconds = re.match(r".*, ([\d.]+) ECG/s, in ([\d.]+) s$", lines[0]).groups()
    assert float(seconds) >= 0.6 and float(rate) == pytest.approx(3 / float(seconds), rel=0.1)
    assert "\x1b" not in stderr.getvalue() and "\r" not in stderr.getvalue()


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "1", "a/b", "1/2/3"):
        with pytest.raises(UsageError):
            parse_shard(bad)


# ---------------------------------------------------------------- existing outputs


def test_existing_outputs_need_resume_or_overwrite(tmp_path):
    folder = good_folder(tmp_path / "in", 2)
    out = tmp_path / "out"
    run(folder, out)
    stale = out / "reports" / "stale.txt"
    stale.write_text("from an older run")
    with pytest.raises(UsageError, match="add --resume .* or --overwrite"):
        run(folder, out)
    summary = run(folder, out, overwrite=True)
    assert summary.n_ok == 2 and not stale.exists()
    rows, _, entries, _ = read_outputs(out)
    assert len(rows) == len(entries) == 2


def test_other_files_in_out_are_not_outputs(tmp_path):
    folder = good_folder(tmp_path / "in", 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert run(folder, tmp_path / "out").n_ok == 1
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_interrupt_keeps_finished_records_and_resume_finishes(tmp_path):
    folder = tmp_path / "in"
    for i in range(5):
        twelve_lead(folder, f"r{i}", seed=i)
    out = tmp_path / "out"
    # batch_size 1: one record per model call; the third call is interrupted.
    with pytest.raises(KeyboardInterrupt):
        run(folder, out, FakeRunner(interrupt_on_call=3), batch_size=1)
    rows, _, entries, run_json = read_outputs(out)
    assert [e["record_id"] for e in entries] == ["r0", "r1"]
    assert [r["record_id"] for r in rows] == ["r0", "r1"]
    assert run_json["status"] == "interrupted" and run_json["counts"]["ok"] == 2
    assert no_temp_files(out)

    runner = FakeRunner()
    summary = run(folder, out, runner, batch_size=1, resume=True)
    assert runner.encode_calls == 3 and runner.encoded_windows == 3  # r2, r3, r4 only
    assert (summary.n_ok, summary.n_resumed, summary.n_failed) == (5, 2, 0)
    rows, _, entries, run_json = read_outputs(out)
    assert sorted(e["record_id"] for e in entries) == [f"r{i}" for i in range(5)]
    assert len(rows) == 5 and run_json["counts"]["resumed"] == 2
    assert run_json["status"] == "completed"
    # The resumed run gives the same numbers as one uninterrupted run.
    run(folder, tmp_path / "fresh")
    _, _, fresh, _ = read_outputs(tmp_path / "fresh")
    key = {e["record_id"]: e["scores"] for e in fresh}
    assert all(e["scores"] == key[e["record_id"]] for e in entries)


def test_resume_retries_failed_records_and_drops_partial_lines(tmp_path):
    folder = tmp_path / "in"
    twelve_lead(folder, "a")
    twelve_lead(folder, "b", seconds=2)
    out = tmp_path / "out"
    run(folder, out)
    with open(out / "records.jsonl", "a", encoding="utf-8") as f:
        f.write('{"record_id": "half a li')  # what a kill mid-write could leave
    twelve_lead(folder, "b", seconds=10)  # the user fixes the bad record
    runner = FakeRunner()
    summary = run(folder, out, runner, resume=True)
    assert runner.encoded_windows == 1 and summary.n_resumed == 1
    rows, _, entries, _ = read_outputs(out)
    assert [(e["record_id"], e["status"]) for e in entries] == [("a", "ok"), ("b", "ok")]
    assert [(r["record_id"], r["status"]) for r in rows] == [("a", "ok"), ("b", "ok")]


def test_resume_with_another_bundle_is_refused(tmp_path):
    folder = good_folder(tmp_path / "in", 1)
    run(folder, tmp_path / "out")
    other = FakeRunner(FakeBundle(manifest_sha256="0" * 64))
    with pytest.raises(UsageError, match="another model bundle"):
        run(folder, tmp_path / "out", other, resume=True)


# ---------------------------------------------------------------- shards and merge


def test_shards_partition_the_records_and_merge(tmp_path):
    folder = tmp_path / "in"
    for i in range(5):
        twelve_lead(folder, f"r{i}", seed=i)
    ids = [r.record_id for r in find_records(folder)]
    shard_ids = []
    for k in (1, 2):
        run(folder, tmp_path / f"out{k}", shard=(k, 2))
        _, _, entries, run_json = read_outputs(tmp_path / f"out{k}")
        shard_ids.append([e["record_id"] for e in entries])
        assert run_json["arguments"]["shard"] == f"{k}/2"
    assert shard_ids == [ids[0::2], ids[1::2]]
    assert not set(shard_ids[0]) & set(shard_ids[1])

    from typer.testing import CliRunner

    from ecgreport.cli import app

    result = CliRunner().invoke(app, ["merge", str(tmp_path / "out2"), str(tmp_path / "out1"),
                                      "--into", str(tmp_path / "merged")])
    assert result.exit_code == 0 and "merged 2 runs" in result.output
    rows, header, entries, run_json = read_outputs(tmp_path / "merged")
    # In record order (as one run over the folder), not shard after shard.
    assert [r["record_id"] for r in rows] == ids and header[0] == "record_id"
    assert (tmp_path / "merged" / "diagnoses.csv").read_text().count("record_id") == 1
    assert [e["record_id"] for e in entries] == ids
    single = tmp_path / "single"
    run(folder, single)
    for name in ("records.jsonl", "diagnoses.csv"):
        assert (tmp_path / "merged" / name).read_text() == (single / name).read_text(), name
    assert sorted(p.stem for p in (tmp_path / "merged" / "reports").glob("*.txt")) == ids
    assert run_json["counts"]["ok"] == 5 and len(run_json["runs"]) == 2
    # The same shard twice is not a valid merge; nor is merging into existing outputs.
    with pytest.raises(ValueError, match="more than one run"):
        writers.merge_outputs([tmp_path / "out1", tmp_path / "out1"], tmp_path / "m2")
    assert merge_main([str(tmp_path / "out1"), "--into", str(tmp_path / "merged")]) == 2
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "out1"), "--into",
                                      str(tmp_path / "merged")])
    assert result.exit_code == 2 and "already holds batch outputs" in result.output
    # the module entry still merges
    assert merge_main([str(tmp_path / "out1"), str(tmp_path / "out2"), "--into",
                       str(tmp_path / "m3")]) == 0
    assert [e["record_id"] for e in read_outputs(tmp_path / "m3")[2]] == ids


def test_an_empty_shard_has_no_records(tmp_path):
    twelve_lead(tmp_path / "in", "only")
    assert run(tmp_path / "in", tmp_path / "out", shard=(2, 2)).exit_code == ExitCode.NO_RECORDS


# ---------------------------------------------------------------- privacy, labels


def test_header_comments_not_copied_unless_asked(tmp_path):
    twelve_lead(tmp_path / "in", "r", comments=["Age: 61", "Sex: Female", "Dx: 426783006"])
    run(tmp_path / "in", tmp_path / "out")
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "Age" not in text and "Female" not in text, path
    run(tmp_path / "in", tmp_path / "with", include_header_comments=True)
    _, _, entries, _ = read_outputs(tmp_path / "with")
    assert entries[0]["header_comments"] == ["Age: 61", "Sex: Female", "Dx: 426783006"]
    assert "Age: 61" in (tmp_path / "with" / "reports" / "r.txt").read_text()


def test_custom_labels(tmp_path):
    twelve_lead(tmp_path / "in", "r")
    labels = tmp_path / "labels.csv"
    labels.write_text("label,description,prompt\nLVH,left ventricular hypertrophy,lvh\nBRADY,bradycardia\n")
    runner = FakeRunner()
    run(tmp_path / "in", tmp_path / "out", runner, labels=labels)
    assert runner.added["custom"] == (["LVH", "BRADY"], ["left ventricular hypertrophy", "bradycardia"],
                                      [["left ventricular hypertrophy", "lvh"], ["bradycardia"]])
    rows, header, entries, run_json = read_outputs(tmp_path / "out")
    assert header[-4:] == ["custom:LVH", "custom:BRADY", "top_findings", "error"]
    assert set(entries[0]["scores"]["custom"]) == {"LVH", "BRADY"}
    assert run_json["label_sets"]["custom"] == 2


def test_custom_labels_without_text_model(tmp_path):
    twelve_lead(tmp_path / "in", "r")
    labels = tmp_path / "labels.csv"
    labels.write_text("label,description\nLVH,left ventricular hypertrophy\n")
    with pytest.raises(EcgReportError, match=r"pip install ecgreport\[train\]"):
        run(tmp_path / "in", tmp_path / "out", FakeRunner(text_model=False), labels=labels)
    with pytest.raises(UsageError, match="no labels"):
        (tmp_path / "empty.csv").write_text("label,description\n")
        run(tmp_path / "in", tmp_path / "out2", labels=tmp_path / "empty.csv")


# ---------------------------------------------------------------- windows, rates


def test_aggregate_windows():
    emb = _unit(np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]))
    mean, best = aggregate_windows(emb)
    np.testing.assert_allclose(mean, np.array([1.6, 1.8]) / np.hypot(1.6, 1.8), rtol=1e-6)
    assert best == 1
    mean, best = aggregate_windows(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert best == 0 and np.linalg.norm(mean) == pytest.approx(1.0)


def test_long_record_is_read_in_windows(tmp_path, monkeypatch):
    import ecgreport.pipeline as pipeline_module

    spans = []
    real_read = pipeline_module.read_record

    def spying_read(ref, sampfrom=0, sampto=None):
        spans.append((sampfrom, sampto))
        return real_read(ref, sampfrom, sampto)

    monkeypatch.setattr(pipeline_module, "read_record", spying_read)
    twelve_lead(tmp_path / "in", "holter", seconds=60)
    runner = FakeRunner()
    run(tmp_path / "in", tmp_path / "out", runner, max_windows=6, batch_size=4)
    assert spans == [(i * 1000, (i + 1) * 1000) for i in range(6)]  # never the whole file
    _, _, (entry,), _ = read_outputs(tmp_path / "out")
    assert entry["n_windows"] == 6 and entry["window_starts_s"] == [0, 10, 20, 30, 40, 50]
    # Scores come from the re-normalised mean of the six window embeddings; the report
    # from the window closest to it. (6 windows > batch_size 4: one call of its own.)
    assert runner.encode_calls == 1
    mean, best = aggregate_windows(runner.encoded_batches[0])
    expected = runner.scores(mean[None])
    for set_name, labels in LABEL_SETS.items():
        got = [entry["scores"][set_name][label] for label in labels]
        np.testing.assert_allclose(got, expected[set_name][0], atol=5e-5)
    assert entry["report_window_start_s"] == 10 * best
    assert entry["report"] == f"fake report {runner.encoded_batches[0][best][0]:.6f}"


def test_short_record_is_padded(tmp_path):
    twelve_lead(tmp_path / "in", "seven", seconds=7)
    run(tmp_path / "in", tmp_path / "out")
    _, _, (entry,), _ = read_outputs(tmp_path / "out")
    assert entry["status"] == "ok" and entry["n_windows"] == 1
    assert any("zero-padded by 3.00 s" in w for w in entry["warnings"])


def test_500_hz_record_is_resampled(tmp_path):
    signal = ecg_like(5000, 12, fs_hz=500, seed=3)
    write_record(tmp_path / "in", "fast", signal, PTBXL_NAMES, fs_hz=500)
    write_record(tmp_path / "in", "slow", signal[::5], PTBXL_NAMES, fs_hz=100)
    runner = FakeRunner()  # asserts every window is (12, 1000) at the bundle's 100 Hz
    run(tmp_path / "in", tmp_path / "out", runner)
    _, _, entries, _ = read_outputs(tmp_path / "out")
    fast, slow = entries
    assert (fast["fs_hz"], slow["fs_hz"]) == (500, 100)
    assert fast["duration_s"] == slow["duration_s"] == 10.0
    for set_name in LABEL_SETS:
        np.testing.assert_allclose(list(fast["scores"][set_name].values()),
                                   list(slow["scores"][set_name].values()), atol=0.05)


def test_batches_span_records_and_read_ahead_is_deterministic(tmp_path):
    folder = tmp_path / "in"
    for i in range(5):
        twelve_lead(folder, f"r{i}", seed=i)
    texts = []
    for workers in (0, 2):
        runner = FakeRunner()
        run(folder, tmp_path / f"out{workers}", runner, batch_size=2, read_workers=workers)
        assert runner.encode_calls == 3 and runner.encoded_windows == 5  # 2 + 2 + 1
        texts.append((tmp_path / f"out{workers}" / "records.jsonl").read_text())
    assert texts[0] == texts[1]


@skip_without_fixtures
def test_both_fixture_folders_at_once(tmp_path):
    refs = find_records(FIXTURES)
    summary = run(FIXTURES, tmp_path / "out", read_workers=2)
    rows, _, entries, run_json = read_outputs(tmp_path / "out")
    assert sorted(e["record_id"] for e in entries) == sorted(r.record_id for r in refs)
    assert {e["record_id"].split("/")[0] for e in entries} == {"challenge-2021", "ptb-xl-mini"}
    assert all(e["status"] == "ok" for e in entries), [e["error"] for e in entries]
    assert len(rows) == len(refs) == summary.n_ok == run_json["counts"]["ok"]
    assert summary.exit_code == ExitCode.OK


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with writers.atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old" and no_temp_files(tmp_path)
    writers.atomic_write_text(target, "new")
    assert target.read_text() == "new" and no_temp_files(tmp_path)


def test_report_path_mirrors_subfolders_and_stays_inside(tmp_path):
    assert writers.report_path(tmp_path, "a/b/c") == tmp_path / "reports" / "a" / "b" / "c.txt"
    assert writers.report_path(tmp_path, "../../x") == tmp_path / "reports" / "x.txt"


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    """Two runs appending to one folder's logs would interleave them: the second is a
    usage error naming the folder, and the first keeps the folder (no lock file left)."""
    good_folder(tmp_path / "in", 2)
    out = tmp_path / "out"
    with writers.output_lock(out):  # what a running batch holds
        with pytest.raises(UsageError, match="being written by another ecgreport batch run"):
            run(tmp_path / "in", out)
        assert list(out.iterdir()) == []  # nothing written by the refused run
    run(tmp_path / "in", out)  # free again once the first has ended
    assert (out / "records.jsonl").is_file()
