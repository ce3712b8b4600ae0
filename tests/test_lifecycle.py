"""How `ecgreport batch` stops: kill -9, SIGTERM and repeated Ctrl-C of a real run, each in a
subprocess with worker processes, on a folder large enough to be still running; then
`--resume` finishes the run with every record listed exactly once."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PTBXL_MINI, skip_without_fixtures
from ecgreport import parallel
from ecgreport.outputs import writers

pytestmark = [skip_without_fixtures,
              pytest.mark.skipif(not parallel.can_fork(),
                                 reason="worker processes are forked on Linux only")]

COPIES = 150  # of the 17 fixture records: 2,550 records, several seconds of work


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """COPIES folders of the PTB-XL fixture records: headers copied (find_records skips a
    header it has seen under another name), signal files linked."""
    root = tmp_path_factory.mktemp("big")
    headers = sorted((PTBXL_MINI / "records100").rglob("*.hea"))
    for k in range(COPIES):
        folder = root / f"copy{k:03d}"
        folder.mkdir()
        for hea in headers:
            shutil.copy(hea, folder / hea.name)
            (folder / hea.with_suffix(".dat").name).symlink_to(hea.with_suffix(".dat"))
    return root


def start(folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    """`ecgreport batch` in its own session (so a signal can go to its whole process
    group, as Ctrl-C in a terminal does), with two workers unless ``extra`` says."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(
        [sys.executable, "-m", "ecgreport", "batch", str(folder), "--out", str(out),
         "--workers", "2", "--quiet", *extra],  # a later --workers wins
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)


def wait_for_first_records(proc: subprocess.Popen, out: Path, timeout_s: float = 120) -> None:
    """Until records.jsonl lists something: the workers are up and results are flowing."""
    jsonl = out / writers.RECORDS_JSONL
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"batch ended early: {proc.communicate()}"
        if jsonl.is_file() and jsonl.stat().st_size > 0:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no record listed in time")


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its new parent, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def counts_match_logs(out: Path) -> dict:
    """run.json's counts agree with what the logs list; returns run.json."""
    run = json.loads((out / writers.RUN_JSON).read_text())
    listed = list(writers.read_jsonl(out / writers.RECORDS_JSONL))
    with open(out / writers.DIAGNOSES_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    c = run["counts"]
    assert c["ok"] + c["failed"] == len(listed) == len(rows)
    assert c["not_processed"] == c["records"] - len(listed)
    assert not [p for p in out.rglob("*.tmp")]
    return run


def resume_lists_every_record_once(folder: Path, out: Path) -> None:
    proc = start(folder, out, "--resume")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    ids = [e["record_id"] for e in writers.read_jsonl(out / writers.RECORDS_JSONL)]
    assert len(ids) == len(set(ids)) == 17 * COPIES
    run = counts_match_logs(out)
    assert run["status"] == "completed" and run["counts"]["not_processed"] == 0


def test_kill_9_of_the_parent_ends_the_workers(big_folder, tmp_path):
    proc = start(big_folder, tmp_path / "out")
    wait_for_first_records(proc, tmp_path / "out")
    workers = children(proc.pid)
    assert len(workers) == 2 and all(alive(w) for w in workers)
    proc.kill()  # SIGKILL: no clean-up runs in the parent
    proc.wait(timeout=10)
    time.sleep(2.0)
    assert [w for w in workers if alive(w)] == []
    resume_lists_every_record_once(big_folder, tmp_path / "out")


@pytest.mark.parametrize("workers", ["2", "1"])
def test_sigterm_saves_and_exits_143(big_folder, tmp_path, workers):
    proc = start(big_folder, tmp_path / "out", "--workers", workers)
    wait_for_first_records(proc, tmp_path / "out")
    kids = children(proc.pid)
    assert len(kids) == (2 if workers == "2" else 0)  # --workers 1: all in one process
    proc.terminate()  # SIGTERM to the main process only, as `kill PID` or `timeout` does
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    assert "stopped by SIGTERM: " in stderr and " saved in " in stderr
    run = counts_match_logs(tmp_path / "out")
    assert run["status"] == "interrupted" and run["counts"]["not_processed"] > 0
    assert run["finished_at"] is not None
    assert [k for k in kids if alive(k)] == []
    resume_lists_every_record_once(big_folder, tmp_path / "out")


def test_sigterm_while_results_are_in_flight_does_not_hang(big_folder, tmp_path):
    """Large chunks (--batch-size 256), stopped at random moments: a worker killed while
    sending its results once left the executor waiting for the rest of the message."""
    rng = random.Random(11)
    for i in range(4):
        out = tmp_path / f"out{i}"
        proc = start(big_folder, out, "--batch-size", "256")
        wait_for_first_records(proc, out)
        time.sleep(rng.uniform(0, 1.0))
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"batch hung after SIGTERM (try {i})")
        assert proc.returncode == 143 and "Traceback" not in stderr, stderr
        counts_match_logs(out)


def test_two_ctrl_c_no_traceback_no_hang(big_folder, tmp_path):
    proc = start(big_folder, tmp_path / "out")
    wait_for_first_records(proc, tmp_path / "out")
    workers = children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    run = counts_match_logs(tmp_path / "out")
    assert run["status"] == "interrupted"
    time.sleep(0.5)
    assert [w for w in workers if alive(w)] == []
    resume_lists_every_record_once(big_folder, tmp_path / "out")


def test_saved_in_only_when_something_was_saved(tmp_path):
    from ecgreport.batch import BatchSummary
    from ecgreport.commands.batch import _interrupted
    from ecgreport.lifecycle import Interrupted

    nothing = BatchSummary(tmp_path, 10, n_not_processed=10)
    message, code = _interrupted(Interrupted(signal.SIGTERM, nothing, by_signal=False), tmp_path)
    assert code == 143 and "saved in" not in message and "nothing new is saved" in message
    some = BatchSummary(tmp_path, 10, n_ok=4, n_failed=1, n_not_processed=5)
    message, code = _interrupted(Interrupted(signal.SIGINT, some, by_signal=False), tmp_path)
    assert code == 130 and f"5 records finished and saved in {tmp_path}, 5 left" in message
    message, code = _interrupted(KeyboardInterrupt(), tmp_path)  # before the run started
    assert code == 130 and "saved in" not in message


def test_remove_temp_files_touches_only_ours(tmp_path):
    (tmp_path / "reports" / "sub").mkdir(parents=True)
    ours = [tmp_path / ".records.jsonl.abc.tmp", tmp_path / "reports" / "sub" / ".r1.txt.x.tmp"]
    theirs = [tmp_path / ".notes.abc.tmp", tmp_path / "reports" / "sub" / "r1.txt"]
    for p in ours + theirs:
        p.write_text("x")
    assert writers.remove_temp_files(tmp_path) == 2
    assert [p.exists() for p in ours + theirs] == [False, False, True, True]
