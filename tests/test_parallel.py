"""`ecgreport batch` with worker processes (ecgreport.parallel) against one process, on a
real exported bundle; and the 2D-convolution form of the exported encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, PTBXL_MINI, skip_without_fixtures, write_record
from ecgreport import parallel
from ecgreport.batch import BatchOptions, run_batch
from ecgreport.outputs import writers

pytestmark = [skip_without_fixtures, pytest.mark.usefixtures("one_torch_thread", "text_cache"),
              pytest.mark.skipif(not parallel.can_fork(), reason="worker processes are forked on Linux only")]

SAME = ("record_id", "path", "status", "error", "report", "decoder_report",
        "similar_training_report", "warnings", "n_windows", "window_starts_s", "missing_leads")


def entries(out: Path) -> list[dict]:
    return list(writers.read_jsonl(out / writers.RECORDS_JSONL))


def assert_same_results(a: Path, b: Path) -> None:
    """Same records in the same order with the same texts; scores equal up to the float
    rounding of one vs several threads (the last printed digit may differ)."""
    ea, eb = entries(a), entries(b)
    assert [e["record_id"] for e in ea] == [e["record_id"] for e in eb]
    for x, y in zip(ea, eb):
        assert {k: x.get(k) for k in SAME} == {k: y.get(k) for k in SAME}, x["record_id"]
        for name, scores in x["scores"].items():
            other = y["scores"][name]
            assert scores.keys() == other.keys()
            assert max(abs(scores[k] - other[k]) for k in scores) <= 2e-4 + 1e-12, x["record_id"]
    for e in ea:
        if e["status"] == "ok":
            assert writers.report_path(b, e["record_id"]).is_file()


def test_workers_give_the_results_of_one_process(tmp_path, tiny_bundle):
    one = run_batch(BatchOptions(FIXTURES, tmp_path / "one", tiny_bundle, workers=1, quiet=True))
    two = run_batch(BatchOptions(FIXTURES, tmp_path / "two", tiny_bundle, workers=2,
                                 batch_size=4, quiet=True))
    assert one.n_ok == two.n_ok == 37 and one.n_failed == two.n_failed == 0
    assert_same_results(tmp_path / "one", tmp_path / "two")
    run_one = json.loads((tmp_path / "one" / writers.RUN_JSON).read_text())
    run_two = json.loads((tmp_path / "two" / writers.RUN_JSON).read_text())
    assert run_one["worker_processes"] == 0 and run_two["worker_processes"] == 2
    assert run_two["execution_provider"] == "CPUExecutionProvider"
    peaks = run_two["peak_rss_mib"]
    assert len(peaks["workers"]) == 2 and all(w > 0 for w in peaks["workers"])
    assert peaks["total"] == pytest.approx(peaks["main"] + sum(peaks["workers"]), abs=0.5)


def test_worker_runs_are_repeatable_byte_for_byte(tmp_path, tiny_bundle):
    for name in ("a", "b"):
        run_batch(BatchOptions(FIXTURES, tmp_path / name, tiny_bundle, workers=2, batch_size=5,
                               quiet=True))
    for name in (writers.RECORDS_JSONL, writers.DIAGNOSES_CSV):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    reports = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.txt"))
    assert len(reports) == 37
    for rel in reports:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def mixed_folder(root: Path) -> tuple[Path, str]:
    """Six good PTB-XL records and, sorted between the 4th and 5th, one that is too short
    (its id is returned)."""
    headers = sorted((PTBXL_MINI / "records100").rglob("*.hea"))[:6]
    for hea in headers:
        for f in hea.parent.glob(hea.stem + ".*"):
            shutil.copy(f, root / f.name)
    short = headers[3].stem + "_short"
    write_record(root, short, np.zeros((200, 12)), [f"L{i}" for i in range(12)], fs_hz=100)
    return root, short


@pytest.mark.parametrize("fail_fast", [False, True])
def test_bad_records_with_workers(tmp_path, tiny_bundle, fail_fast):
    (tmp_path / "in").mkdir()
    folder, short = mixed_folder(tmp_path / "in")
    got = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        s = run_batch(BatchOptions(folder, out, tiny_bundle, workers=workers, batch_size=2,
                                   fail_fast=fail_fast, quiet=True))
        got[workers] = (s.n_ok, s.n_failed, s.n_not_processed,
                        [(e["record_id"], e["status"], e["error"]) for e in entries(out)])
    assert got[1] == got[2]
    n_ok, n_failed, not_processed, listed = got[2]
    assert n_failed == 1 and listed[4][:2] == (short, "failed")
    assert "record too short" in listed[4][2]
    if fail_fast:
        assert (n_ok, not_processed, len(listed)) == (4, 2, 5)
    else:
        assert (n_ok, not_processed, len(listed)) == (6, 0, 7)


def test_resume_with_workers_skips_finished_records(tmp_path, tiny_bundle):
    out = tmp_path / "out"
    run_batch(BatchOptions(FIXTURES, out, tiny_bundle, workers=2, quiet=True))
    again = run_batch(BatchOptions(FIXTURES, out, tiny_bundle, workers=2, resume=True,
                                   quiet=True))
    assert again.n_resumed == again.n_ok == 37 and again.n_processed == 0
    assert len(entries(out)) == 37


def test_custom_labels_reach_the_workers(tmp_path, tiny_bundle):
    labels = tmp_path / "labels.csv"
    labels.write_text("label,description\nAFIB,atrial fibrillation\nLBBB,left bundle branch block\n")
    out = tmp_path / "out"
    s = run_batch(BatchOptions(PTBXL_MINI / "records100", out, tiny_bundle, workers=2,
                               labels=labels, quiet=True))
    assert s.n_ok == 17
    for e in entries(out):
        assert set(e["scores"]["custom"]) == {"AFIB", "LBBB"}
    header = (out / writers.DIAGNOSES_CSV).read_text().splitlines()[0]
    assert "custom:AFIB" in header and "custom:LBBB" in header
    # 17 records, fewer than one batch of 64: still split so that both workers had some.
    run = json.loads((out / writers.RUN_JSON).read_text())
    assert run["worker_processes"] == 2 and len(run["peak_rss_mib"]["workers"]) == 2


def test_auto_workers_is_one_per_core_within_limits():
    n = parallel.auto_workers()
    assert 1 <= n <= parallel.MAX_AUTO_WORKERS and n <= parallel.usable_cores()


def test_exported_encoder_uses_2d_convolutions(tiny_bundle, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from ecgreport.onnx.graphs import conv1d_as_conv2d

    model = onnx.load(str(tiny_bundle / "encoder.onnx"))
    weights = {w.name: numpy_helper.to_array(w) for w in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(weights[n.input[1]].ndim == 4 for n in convs)
    assert model.graph.node[0].op_type == "Unsqueeze"
    # A second pass finds no 1D convolution left and leaves the file as it is.
    copy = tmp_path / "encoder.onnx"
    shutil.copy(tiny_bundle / "encoder.onnx", copy)
    assert conv1d_as_conv2d(copy) == 0
    assert copy.read_bytes() == (tiny_bundle / "encoder.onnx").read_bytes()


def test_a_worker_that_cannot_start_stops_the_run_at_once(tmp_path, tiny_bundle, monkeypatch):
    import time

    from ecgreport.errors import EcgReportError
    from ecgreport.onnx import runtime

    def no_session(self):
        raise MemoryError("simulated: no memory for the session")

    monkeypatch.setattr(runtime.ModelRunner, "__post_init__", no_session)  # forked workers too
    started = time.perf_counter()
    with pytest.raises(EcgReportError, match="worker processes could not start"):
        run_batch(BatchOptions(FIXTURES, tmp_path / "out", tiny_bundle, workers=2, quiet=True))
    assert time.perf_counter() - started < parallel.STARTUP_TIMEOUT_S / 4
    run = json.loads((tmp_path / "out" / writers.RUN_JSON).read_text())
    assert run["status"] == "failed: EcgReportError"


def test_a_worker_that_dies_stops_the_run_with_a_clear_error(tmp_path, tiny_bundle, monkeypatch):
    import os

    from ecgreport import pipeline
    from ecgreport.errors import EcgReportError

    real = pipeline.infer_entries

    def die_on_the_second_batch(items, *args, **kwargs):
        if any(item.entry["record_id"].endswith("00005_lr") for item in items):
            os._exit(9)  # as the kernel's out-of-memory killer would end it
        return real(items, *args, **kwargs)

    monkeypatch.setattr(pipeline, "infer_entries", die_on_the_second_batch)
    with pytest.raises(EcgReportError, match="worker process died"):
        run_batch(BatchOptions(PTBXL_MINI / "records100", tmp_path / "out", tiny_bundle,
                               workers=2, batch_size=2, quiet=True))
    # what was finished before stays listed, and --resume will redo the rest
    done = [e["record_id"] for e in entries(tmp_path / "out")]
    assert all(e["status"] == "ok" for e in entries(tmp_path / "out"))
    assert not any(r.endswith("00005_lr") for r in done)


def test_workers_asked_where_they_cannot_run_are_named(tmp_path, tiny_bundle, monkeypatch):
    monkeypatch.setattr(parallel, "can_fork", lambda: False)  # as on macOS or Windows
    s = run_batch(BatchOptions(PTBXL_MINI / "records100", tmp_path / "out", tiny_bundle,
                               workers=3, quiet=True))
    assert s.n_ok == 17
    run = json.loads((tmp_path / "out" / writers.RUN_JSON).read_text())
    assert run["worker_processes"] == 0
    assert "--workers 3: worker processes need Linux" in run["execution_note"]
