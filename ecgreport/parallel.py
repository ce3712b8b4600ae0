"""`ecgreport batch` on several CPU cores: worker processes, each with a one-thread model.

Each worker holds its own single-threaded onnxruntime session and runs whole chunks of
``batch_size`` records: read, preprocess, encode, score, generate the report, write the
report files and format the log lines. The main process hands out the chunks, at most
``QUEUE_PER_WORKER * workers`` ahead, and appends the log lines in record order (see
:class:`~ecgreport.outputs.sink.BatchSink`). The outputs are those of one process, except
that a score's last printed digit can differ now and then (one-thread and multi-thread
float sums round differently); repeated runs with workers are identical byte for byte.

Why processes rather than onnxruntime's own threads: report generation is a loop of small
decoder steps (a few 256-wide matrix products per token), where two intra-op threads were
no faster than one on the 2-core test machine, while two processes each decoding their
own batch run side by side; the reading, nearest-report search and formatting in Python
are spread over the cores the same way. See docs/benchmarks.md for the measured effect.

Workers are forked (Linux) from the main process after the bundle is loaded and
verified, before any thread is started, so they share its memory and start in
milliseconds. Elsewhere, or on a GPU, `batch` runs in one process.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from ecgreport import pipeline
from ecgreport.errors import EcgReportError

MAX_AUTO_WORKERS = 8   # each worker: ~230 MB resident, much of it shared with the main process
STARTUP_TIMEOUT_S = 120
QUEUE_PER_WORKER = 2   # chunks handed out ahead per worker

_state: "_WorkerState | None" = None   # set in each worker by _start_worker


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Workers are forked on Linux only: on macOS, fork after numpy's Accelerate or other
    system frameworks have started can crash the child (Python itself defaults to spawn
    there), and Windows has no fork."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def auto_workers() -> int:
    """Worker processes for ``--workers 0`` (auto): one per usable core, at most
    MAX_AUTO_WORKERS; 1 (no workers) where processes cannot be forked."""
    return min(usable_cores(), MAX_AUTO_WORKERS) if can_fork() else 1


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes or KiB


@dataclass
class _WorkerState:
    runner: object
    sink: object
    spec: object
    options: object


def _start_worker(started, bundle, sink, spec, options) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the main process's to handle
    global _state
    try:
        from threadpoolctl import threadpool_limits

        from ecgreport.onnx.runtime import ModelRunner

        # One BLAS thread per worker too: numpy's OpenBLAS would otherwise start a thread per
        # core in every worker, and its spinning threads halved the throughput of two workers.
        threadpool_limits(limits=1, user_api="blas")
        _state = _WorkerState(ModelRunner(bundle, device="cpu", threads=1), sink, spec, options)
    except BaseException:
        started.abort()  # the main process stops waiting at once
        raise
    started.wait(timeout=STARTUP_TIMEOUT_S)


def _ready() -> int:
    return os.getpid()


def _run_chunk(refs: list) -> tuple[list[dict], tuple[list, list], int, float]:
    """In a worker: one chunk of records -> (brief entries, (log lines, folders of the
    reports written), pid, peak RSS MiB). Records are grouped into model batches of at
    most ``batch_size`` windows exactly as in the one-process pipeline."""
    st = _state
    entries = pipeline.process_records(refs, st.spec, st.runner, st.options, st.sink)
    brief = [{k: e[k] for k in ("record_id", "path", "status", "error")} for e in entries]
    rendered = st.sink.render(entries)
    folders = st.sink.write_reports(rendered)  # here, so that the main process only appends
    lines = [(jsonl, csv_line) for _, _, jsonl, csv_line in rendered]
    return brief, (lines, folders), os.getpid(), peak_rss_mib()


class WorkerPool:
    """``workers`` forked processes, started at construction (call it before starting any
    thread, e.g. a progress bar). Use as a context manager; :meth:`run` does the work."""

    def __init__(self, workers: int, bundle, sink, spec, options):
        """``spec``: the run's :class:`~ecgreport.pipeline.RecordSpec`; ``options``: its
        :class:`~ecgreport.options.BatchOptions`, handed whole to every worker."""
        self.workers, self.sink, self.options = workers, sink, options
        self.batch_size = options.batch_size
        self.peaks: dict[int, float] = {}
        context = multiprocessing.get_context("fork")
        started = context.Barrier(workers + 1)
        self._pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker,
            initargs=(started, bundle, sink, spec, options))
        # With fork, the first task starts every worker (before the executor's own thread).
        # Then wait until each has its model: otherwise the first worker up takes every
        # chunk of a short list while the others are still loading.
        try:
            ready = self._pool.submit(_ready)
            try:
                started.wait(timeout=STARTUP_TIMEOUT_S)
            except threading.BrokenBarrierError:
                raise EcgReportError(f"the {workers} batch worker processes could not start "
                                   "(see above; --workers 1 runs without them)") from None
            ready.result()
        except BaseException:
            # Wait for the workers to be gone: one still leaving its initializer could
            # otherwise abort the shared barrier memory that a later pool reuses.
            self._pool.shutdown(wait=True, cancel_futures=True)
            raise

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, kind, error, tb) -> None:
        # On an error or Ctrl-C, do not wait for queued chunks; running ones finish.
        self._pool.shutdown(wait=kind is None, cancel_futures=True)

    def run(self, todo: list, written) -> int:
        """Process ``todo`` (record references) and write the results in order with the
        sink; ``written(brief_entries)`` after each chunk. Returns how many records were
        not processed (stopped by ``fail_fast``)."""
        try:
            return self._run(todo, written, self.options.fail_fast)
        except BrokenProcessPool:  # from a result or from the next submit, whichever comes first
            raise EcgReportError(
                "a batch worker process died (killed for lack of memory?); the records "
                "finished so far are saved: rerun with --resume, perhaps with fewer "
                "--workers") from None

    def _run(self, todo: list, written, fail_fast: bool) -> int:
        # Chunks of batch_size records, smaller for a short list so every worker gets some.
        chunk_size = max(1, min(self.batch_size, math.ceil(len(todo) / self.workers)))
        chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
        rest = iter(chunks)
        pending = deque((len(c), self._pool.submit(_run_chunk, c))
                        for c in itertools.islice(rest, QUEUE_PER_WORKER * self.workers))
        done = 0
        while pending:
            size, future = pending.popleft()
            brief, (lines, folders), pid, peak = future.result()
            self.peaks[pid] = max(peak, self.peaks.get(pid, 0.0))
            for chunk in itertools.islice(rest, 1):
                pending.append((len(chunk), self._pool.submit(_run_chunk, chunk)))
            if fail_fast:
                bad = next((i for i, e in enumerate(brief) if e["status"] != "ok"), None)
                if bad is not None:
                    # Reports the worker wrote for records after the failure stay unlisted,
                    # as after an interruption; --resume redoes those records.
                    brief, lines = brief[:bad + 1], lines[:bad + 1]
                    self.sink.add_lines(lines, folders)
                    written(brief)
                    for _, later in pending:
                        later.cancel()
                    return len(todo) - done - len(brief)
            self.sink.add_lines(lines, folders)
            written(brief)
            done += size
        return 0
