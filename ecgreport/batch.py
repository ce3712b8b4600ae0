"""`ecgreport batch` as a library call: a folder of WFDB records in, reports and scores out.

:func:`run_batch` takes one :class:`~ecgreport.options.BatchOptions`, finds the records,
loads the model, opens the outputs and drives the per-record pipeline
(:mod:`ecgreport.pipeline`: read, window, preprocess, encode, score, report, format) over
them. On the CPU (Linux) the pipeline runs in worker processes, one per core, a chunk of
records at a time (:mod:`ecgreport.parallel`); otherwise (a GPU, ``workers=1``) the
model runs in this process while a small thread pool reads and preprocesses the next
records. Either way results are written in record order, so the outputs do not depend on
timing.

Memory stays bounded whatever the folder size: only the list of record references is
held; signals live from reading until their batch is encoded.

Outputs (:mod:`ecgreport.outputs.writers`) grow batch by batch, so an interrupted run keeps
every finished batch, and ``resume=True`` skips the records already ``ok`` in
``records.jsonl`` (failed ones are retried).

``shard=(k, n)`` processes record ``i`` of the sorted list when ``i % n == k - 1``; merge
the shards' folders with ``ecgreport merge OUT1 OUT2 ... --into OUT``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import signal
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.markup import escape
from rich.text import Text

from ecgreport import __version__, lifecycle, parallel
from ecgreport.errors import BundleError, EcgReportError, ExitCode, UsageError, check_output_folder
from ecgreport.labelsets import read_labels_csv
from ecgreport.onnx.runtime import add_label_set, choose_providers
from ecgreport.options import BatchOptions, parse_shard
from ecgreport.outputs import writers
from ecgreport.outputs.sink import BatchSink, failure_line
from ecgreport.pipeline import (RecordSpec, infer_entries, prepare_record, window_batches,
                                write_pages)
from ecgreport.records import find_records
from ecgreport.records.discover import printable

logger = logging.getLogger(__name__)

CUSTOM_SET = "custom"
MAX_FAILURES_KEPT = 100

__all__ = ["BatchOptions", "BatchSummary", "UsageError", "open_model", "parse_shard",
           "run_batch"]


@dataclass
class BatchSummary:
    """What a run did. ``n_records``: records in this run's list (after ``shard``);
    ``n_ok`` includes the ``n_resumed`` records finished by an earlier run."""

    out_dir: Path
    n_records: int
    n_ok: int = 0
    n_failed: int = 0
    n_resumed: int = 0
    n_not_processed: int = 0
    wall_s: float = 0.0
    provider: str = ""
    status: str = "running"
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first MAX_FAILURES_KEPT

    @property
    def n_processed(self) -> int:
        return self.n_ok - self.n_resumed + self.n_failed

    @property
    def records_per_s(self) -> float:
        return self.n_processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def exit_code(self) -> ExitCode:
        if self.n_records == 0:
            return ExitCode.NO_RECORDS
        return ExitCode.SOME_RECORDS_FAILED if self.n_failed else ExitCode.OK


def open_model(bundle_path: Path | None, device: str, workers: int = 1, warmup_rows: int = 1):
    """Load and verify a bundle (the packaged one if None); return ``(bundle, runner, note)``.

    ``runner`` is None when the records are to go to worker processes
    (:mod:`ecgreport.parallel`): ``workers`` > 1 and the CPU, asked for or because CUDA
    cannot run the model: a library is missing (no runner is made here then), or the
    ModelRunner's check fails (a warm-up of ``warmup_rows`` windows, the batch's largest
    encode). On a GPU the model runs in this process, with one
    session. ``note``: one line for the user about the device, or None.
    """
    if bundle_path is not None and not Path(bundle_path).exists():
        raise BundleError(f"model bundle not found: {bundle_path}")
    from ecgreport.onnx.runtime import CudaUnavailable, ModelRunner, default_bundle_path, load_bundle

    bundle = load_bundle(Path(bundle_path) if bundle_path is not None else default_bundle_path())
    forks = workers > 1 and parallel.can_fork()
    if forks:
        chosen, note = choose_providers(device)  # the CPU, or CUDA's libraries all load
        if chosen[0] == "CPUExecutionProvider":
            return bundle, None, note
    try:
        runner = ModelRunner(bundle, device=device, warmup_rows=warmup_rows, cpu_fallback=not forks)
    except CudaUnavailable as err:  # the CPU, with its worker processes
        return bundle, None, err.note
    return bundle, runner, runner.note


def run_batch(options: BatchOptions, *, console: Console | None = None,
              runner=None) -> BatchSummary:
    """Analyse every WFDB record under ``options.folder``; write the outputs to
    ``options.out_dir``.

    ``runner``: an object with the ModelRunner API and a ``bundle`` attribute, used instead
    of loading ``options.model`` (tests, or reusing one session). Progress and per-record
    failures go to ``console`` (stderr by default) unless ``options.quiet``.

    Raises UsageError (outputs already present without ``resume`` or ``overwrite``, an
    unreadable folder or labels file), BundleError, EcgReportError (``labels`` without the
    text model), and KeyboardInterrupt after saving ``run.json`` (finished batches stay
    valid). A folder without records returns a summary with ``n_records == 0``.

    Ctrl-C and SIGTERM are handled alike while it runs (:mod:`ecgreport.lifecycle`): the
    outputs are flushed, ``run.json`` says ``interrupted`` with the counts, and
    :class:`~ecgreport.lifecycle.Interrupted` (a KeyboardInterrupt) is raised, carrying
    the summary once one exists, and the exit code (130 or 143).

    >>> run_batch(BatchOptions(Path("ecgs"), Path("results"))).exit_code  # doctest: +SKIP
    <ExitCode.OK: 0>
    """
    with lifecycle.interruptions(), contextlib.ExitStack() as held:
        return _run_batch(options, console, runner, held)


def _run_batch(options: BatchOptions, console: Console | None, runner,
               held: contextlib.ExitStack) -> BatchSummary:
    started, started_at = time.perf_counter(), _now()
    console = console or Console(stderr=True)
    opts = options
    folder, out_dir, quiet = opts.folder, opts.out_dir, opts.quiet
    check_output_folder(out_dir)
    # Read before the folder scan, so a bad file fails fast: {label: prompts}.
    custom = read_labels_csv(opts.labels) if opts.labels is not None else None
    try:
        refs = find_records(folder)
    except FileNotFoundError as err:
        raise UsageError(f"cannot read records: {err}") from None
    if opts.shard is not None:
        refs = refs[opts.shard[0] - 1::opts.shard[1]]
    opts = opts.resolved(len(refs))  # --pictures auto: all or failed, by the run's size
    summary = BatchSummary(out_dir, len(refs))
    if not refs:
        summary.status = "no records"
        return summary
    held.enter_context(writers.output_lock(out_dir))  # until this run has ended
    present = writers.existing_outputs(out_dir)
    if present and not (opts.resume or opts.overwrite):
        raise UsageError(
            f"{out_dir} already holds the outputs of a batch run ({', '.join(present)}): "
            "add --resume to continue that run, or --overwrite to replace its outputs")

    runner_given = runner is not None
    n_workers = opts.workers or parallel.auto_workers()  # 0: one per core
    if runner is None:
        bundle, runner, note = open_model(opts.model, opts.device, n_workers,
                                          warmup_rows=max(opts.batch_size, opts.max_windows))
    else:
        bundle, note = runner.bundle, getattr(runner, "note", None)
    label_sets = {name: list(labels) for name, labels in bundle.label_sets.items()}
    descriptions = {name: dict(bundle.label_descriptions.get(name, {})) for name in label_sets}
    if custom is not None:
        if CUSTOM_SET in label_sets:
            raise UsageError(f"the bundle already has a label set named {CUSTOM_SET!r}")
        try:
            names, prompts = list(custom), list(custom.values())
            descriptions_custom = [p[0] for p in prompts]
            if runner is not None:
                runner.add_label_set(CUSTOM_SET, names, descriptions_custom, prompts)
            else:  # the workers, forked later, inherit the bundle with the new set
                add_label_set(bundle, CUSTOM_SET, names, descriptions_custom, prompts)
        except RuntimeError as err:
            raise EcgReportError(f"--labels needs the text model: {err}") from err
        label_sets[CUSTOM_SET] = list(custom)
        descriptions[CUSTOM_SET] = dict(zip(names, descriptions_custom))
    if runner is not None:
        summary.provider = str(getattr(runner, "provider", ""))
        if opts.workers > 1 and not runner_given:
            # open_model keeps the model here only for a GPU that ran it, or without fork
            why = ("the model runs on the GPU" if summary.provider == "CUDAExecutionProvider"
                   else "worker processes need Linux")
            note = "; ".join(filter(None, [note, f"--workers {opts.workers}: {why}, so one "
                                                  "process does the work"]))
    else:
        summary.provider = "CPUExecutionProvider"
    if note and not quiet:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False,
                      soft_wrap=True)
    run_info = {
        "tool": "ecgreport", "version": __version__, "status": "running",
        "started_at": started_at, "finished_at": None,
        "bundle": {"path": str(bundle.path), "manifest_sha256": bundle.manifest_sha256},
        "execution_provider": summary.provider, "execution_note": note,
        # as the session reports them: CUDA's use_tf32 and cudnn_conv_algo_search ({} on the CPU)
        "execution_provider_options": dict(getattr(runner, "provider_options", None) or {}),
        "worker_processes": 0,  # processes running the model besides this one
        "arguments": options.to_json(),  # as asked; "pictures" says what auto became
        "pictures": opts.pictures,
        "label_sets": {name: len(labels) for name, labels in label_sets.items()},
    }

    if present and opts.overwrite:
        writers.remove_outputs(out_dir)
    sink = BatchSink(out_dir, label_sets, descriptions, opts.top_k,
                     thresholds=getattr(bundle, "thresholds", None))
    try:
        done = sink.open(resume=bool(present and opts.resume),
                         manifest_sha256=bundle.manifest_sha256)
    except ValueError as err:
        raise UsageError(str(err)) from None
    todo = [ref for ref in refs if printable(ref.record_id) not in done]
    summary.n_resumed = summary.n_ok = len(refs) - len(todo)

    def save_run_info() -> None:
        summary.wall_s = time.perf_counter() - started
        run_info.update(status=summary.status, finished_at=_now() if summary.status != "running"
                        else None, wall_time_s=round(summary.wall_s, 3),
                        records_per_s=round(summary.records_per_s, 3), counts={
                            "records": summary.n_records, "ok": summary.n_ok,
                            "failed": summary.n_failed, "resumed": summary.n_resumed,
                            "not_processed": summary.n_not_processed})
        writers.write_json(out_dir / writers.RUN_JSON, run_info)

    spec = RecordSpec.of(bundle, opts)
    pool = None
    try:
        save_run_info()
        with contextlib.ExitStack() as stack:
            if runner is None and todo:  # forked before the progress bar starts its thread
                n = min(n_workers, len(todo))
                pool = stack.enter_context(parallel.WorkerPool(n, bundle, sink, spec, opts))
                run_info["worker_processes"] = n
            progress = stack.enter_context(_progress(console, quiet))
            task = progress.add_task("ECGs", total=len(todo))

            def written(entries: list[dict]) -> None:
                _count(entries, summary, None if quiet else console)
                progress.advance(task, len(entries))

            if pool is not None:
                summary.n_not_processed = pool.run(todo, written)
            else:
                summary.n_not_processed = _pipeline(todo, spec, runner, sink, written, opts)
        summary.status = "stopped by --fail-fast" if summary.n_not_processed else "completed"
    except KeyboardInterrupt as err:
        summary.status = "interrupted"
        # What is listed in the logs (flushed below) is counted; the rest is left.
        summary.n_not_processed = summary.n_records - summary.n_ok - summary.n_failed
        if isinstance(err, lifecycle.Interrupted):
            err.summary = summary
            raise
        raise lifecycle.Interrupted(signal.SIGINT, summary, by_signal=False) from None
    except BaseException as err:
        summary.status = f"failed: {type(err).__name__}"
        raise
    finally:
        sink.close()
        run_info["peak_rss_mib"] = _peak_memory(pool)
        save_run_info()
        _write_overview(out_dir, console)
    return summary


def _write_overview(out_dir: Path, console: Console) -> None:
    """``index.html`` for every record listed so far (also after Ctrl-C or an error: a
    failure here is a warning, never the run's failure)."""
    from ecgreport.outputs.overview import write_overview

    try:
        write_overview(out_dir)
    except Exception as err:
        logger.debug("overview failed", exc_info=True)
        console.print(f"warning: could not write {out_dir}/index.html: {err} (rerun "
                      f"`ecgreport overview {out_dir}`)", style="yellow", markup=False,
                      soft_wrap=True)


def _peak_memory(pool) -> dict:
    """Peak resident memory of this process and of each worker, and their sum (an upper
    bound of the run's peak: the workers share much of their memory with this process)."""
    main = parallel.peak_rss_mib()
    workers = sorted(pool.peaks.values()) if pool is not None else []
    return {"main": round(main, 1), "workers": [round(w, 1) for w in workers],
            "total": round(main + sum(workers), 1)}


# ---------------------------------------------------------------- one process


def _read_ahead(fn, items: list, workers: int, depth: int):
    """``map(fn, items)`` in order, with up to ``depth`` calls running ahead in threads."""
    if workers <= 0:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="ecgreport-read")
    try:
        rest = iter(items)
        queue = deque(pool.submit(fn, item) for item in itertools.islice(rest, depth))
        while queue:
            future = queue.popleft()
            for item in itertools.islice(rest, 1):
                queue.append(pool.submit(fn, item))
            yield future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _pipeline(todo, spec: RecordSpec, runner, sink: BatchSink, written,
              opts: BatchOptions) -> int:
    """Read, batch, infer and write ``todo`` in order in this process; return how many were
    not processed (stopped by ``fail_fast``). ``written(entries)`` after each batch."""
    # Read a whole batch of single-window records ahead, so the next batch is ready when
    # the model finishes (a shorter queue left the model waiting ~0.3 ms per record).
    # Memory: at most depth * max_windows windows of 12 x window_samples float32.
    workers, batch_size = opts.read_workers, opts.batch_size
    depth = max(2 * workers, batch_size, math.ceil(2 * batch_size / spec.max_windows))
    consumed = 0

    def until_failure(prepared):
        nonlocal consumed
        for item in prepared:
            consumed += 1
            yield item
            if opts.fail_fast and item.windows is None:
                prepared.close()  # stop reading ahead; the batch so far is still analysed
                return

    with contextlib.closing(_read_ahead(lambda ref: prepare_record(ref, spec), todo, workers,
                                        depth)) as prepared:
        for group in window_batches(until_failure(prepared), batch_size):
            entries = infer_entries(group, runner, opts.beams, opts.max_tokens, sink)
            write_pages(group, opts)
            with lifecycle.deferred_signals():  # listed and counted together
                sink.write(entries)
                written(entries)
    return len(todo) - consumed


# ---------------------------------------------------------------- people-messages


def _count(entries: list[dict], summary: BatchSummary, console: Console | None) -> None:
    """Add saved entries to the summary; one line per failed record on ``console``."""
    for entry in entries:
        if entry["status"] == "ok":
            summary.n_ok += 1
            continue
        summary.n_failed += 1
        if len(summary.failures) < MAX_FAILURES_KEPT:
            summary.failures.append((entry["record_id"], entry["error"]))
        if console is not None:
            console.print(Text.assemble(("failed ", "yellow"), failure_line(entry)),
                          highlight=False, soft_wrap=True)


PLAIN_PROGRESS_EVERY_S = 10.0  # a progress line this often when stderr is not a terminal


class _RateColumn(ProgressColumn):
    """Records per second since the start: rich's own windowed speed made absurd figures
    (``119393.5 ECG/s``) when results arrive in a few large chunks."""

    def render(self, task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed or not task.completed:
            return Text("")
        return Text(f"{task.completed / elapsed:.1f} ECG/s", style="cyan")


class PlainProgress:
    """Progress for a stderr that is not a terminal (a log file, a scheduler's output):
    a plain line every ``every_s`` seconds and one at the end, with the true rate (records
    done / seconds since the start) and the time left at that rate. The API of rich's
    Progress that batch uses (``add_task``, ``advance``, a context manager)."""

    def __init__(self, console: Console, every_s: float = PLAIN_PROGRESS_EVERY_S,
                 clock=time.monotonic):
        self.console, self.every_s, self.clock = console, every_s, clock
        self.description, self.total, self.done = "", 0, 0
        self.started = self.last = 0.0

    def __enter__(self) -> "PlainProgress":
        self.started = self.last = self.clock()
        return self

    def __exit__(self, *exc) -> None:
        if self.done:
            self._line(final=True)

    def add_task(self, description: str, total: int) -> int:
        self.description, self.total = description, total
        return 0

    def advance(self, task: int, n: int) -> None:
        self.done += n
        if self.done < self.total and self.clock() - self.last >= self.every_s:
            self._line(final=False)

    def _line(self, final: bool) -> None:
        now = self.clock()
        self.last = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        percent = 100 * self.done / self.total if self.total else 100.0
        when = (f"in {elapsed:.1f} s" if final else
                f"{_clock((self.total - self.done) / rate) if rate else '?'} left")
        self.console.print(f"{self.description}: {self.done}/{self.total} ({percent:.0f}%), "
                           f"{rate:.1f} ECG/s, {when}", markup=False, highlight=False,
                           soft_wrap=True)


def _clock(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _progress(console: Console, quiet: bool):
    if not quiet and not console.is_terminal:
        return PlainProgress(console)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    _RateColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, disable=quiet)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
