"""The batch pipeline: a folder of WFDB records in, reports and zero-shot scores out.

Per record, in this order:

1. The header gives the sampling rate and length; :func:`~ecgreport.signal.plan_windows`
   plans windows of ``window_s = bundle.window_samples / bundle.fs_hz`` seconds in the
   record's own samples (at most ``max_windows``, spread evenly; a record shorter than
   ``min_seconds`` fails with the reason). Only the planned spans are read from disk
   (``read_record(ref, start, stop)``), so a 24 h Holter is never loaded whole.
2. Each window is resampled to ``bundle.fs_hz``, normalised with
   :func:`~ecgreport.signal.normalise` (the model's input definition), and brought to
   exactly ``window_samples``: a record shorter than one window is zero-padded at the end,
   after normalisation, so the padding sits at the baseline.
3. Windows of consecutive records are batched, whole records only, up to ``batch_size``
   windows (a record with more windows than that is a batch of its own), and encoded.
4. The record's embedding is the mean of its window embeddings, re-normalised to unit
   length; the zero-shot scores are the cosine similarities of that embedding with each
   label's text embedding (``runner.scores``).
5. The report is generated from one window: the one whose embedding is closest (cosine)
   to the record's embedding, i.e. the most typical window. Decoding from the mean would
   feed the decoder an input that no real window produced.

Memory stays bounded whatever the folder size: only the list of record references is
held; signals live from reading until their batch is encoded. On the CPU (Linux), steps
1-5 and the formatting of the outputs run in worker processes, one per core, a chunk of
records at a time (:mod:`ecgreport.parallel`); otherwise (a GPU, ``workers=1``) the model
runs in this process while a small thread pool reads and preprocesses the next records.
Either way results are written in record order, so the outputs do not depend on timing.

Outputs (:mod:`ecgreport.outputs.writers`) grow batch by batch, so an interrupted run keeps
every finished batch, and ``resume=True`` skips the records already ``ok`` in
``records.jsonl`` (failed ones are retried).

``shard=(k, n)`` processes record ``i`` of the sorted list when ``i % n == k - 1``; merge
the shards' folders with ``python -m ecgreport.outputs.merge OUT1 OUT2 ... --into OUT``.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.markup import escape
from rich.text import Text

from ecgreport import __version__, parallel
from ecgreport.errors import BundleError, EcgReportError, ExitCode, RecordError
from ecgreport.leads import STANDARD_LEADS
from ecgreport.onnx.runtime import add_label_set, choose_providers
from ecgreport.outputs import writers
from ecgreport.outputs.sink import BatchSink, failure_line
from ecgreport.records import RecordRef, find_records, read_header, read_record
from ecgreport.signal import model_window, plan_windows

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
CUSTOM_SET = "custom"
MAX_FAILURES_KEPT = 100


class UsageError(EcgReportError):
    """The arguments cannot work as given (exit code 2); the message says what to change."""


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


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; raises UsageError unless ``1 <= K <= N``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like K/N (e.g. 1/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


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


def run_batch(
    folder: Path,
    out_dir: Path,
    bundle_path: Path | None = None,
    *,
    device: str = "auto",
    batch_size: int = 64,
    max_windows: int = 6,
    min_seconds: float = 5.0,
    resume: bool = False,
    overwrite: bool = False,
    fail_fast: bool = False,
    labels_csv: Path | None = None,
    top_k: int = 5,
    beams: int = 1,
    max_tokens: int | None = None,
    shard: tuple[int, int] | None = None,
    include_header_comments: bool = False,
    quiet: bool = False,
    console: Console | None = None,
    runner=None,
    read_workers: int = 2,
    workers: int = 0,
) -> BatchSummary:
    """Analyse every WFDB record under ``folder``; write the outputs to ``out_dir``.

    ``runner``: an object with the ModelRunner API and a ``bundle`` attribute, used instead
    of loading ``bundle_path`` (tests, or reusing one session). ``workers``: processes
    that run the model on the CPU (0: one per core, see :mod:`ecgreport.parallel`; 1: all
    in this process, as always on a GPU). ``read_workers``: threads reading ahead when the
    model runs in this process (0 reads in this thread). ``max_tokens``: report length limit, None for
    the bundle's own. ``batch_size`` counts windows; a record is never split across
    batches. Progress and per-record failures go to ``console`` (stderr by default)
    unless ``quiet``.

    Raises UsageError (bad arguments, outputs already present without ``resume`` or
    ``overwrite``), BundleError, EcgReportError (``labels_csv`` without the text model),
    and KeyboardInterrupt after saving ``run.json`` (finished batches stay valid).
    A folder without records returns a summary with ``n_records == 0``.

    >>> run_batch(Path("ecgs"), Path("results")).exit_code  # doctest: +SKIP
    <ExitCode.OK: 0>
    """
    started, started_at = time.perf_counter(), _now()
    console = console or Console(stderr=True)
    folder, out_dir = Path(folder), Path(out_dir)
    arguments = {
        "folder": str(folder), "out_dir": str(out_dir),
        "model": None if bundle_path is None else str(bundle_path), "device": device,
        "batch_size": batch_size, "max_windows": max_windows, "min_seconds": min_seconds,
        "resume": resume, "overwrite": overwrite, "fail_fast": fail_fast,
        "labels": None if labels_csv is None else str(labels_csv), "top_k": top_k,
        "beams": beams, "max_tokens": max_tokens,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "include_header_comments": include_header_comments, "workers": workers,
    }
    _check_arguments(device, batch_size, max_windows, min_seconds, top_k, beams, max_tokens,
                     resume, overwrite, shard, workers)
    try:
        refs = find_records(folder)
    except FileNotFoundError as err:
        raise UsageError(f"cannot read records: {err}") from None
    if shard is not None:
        refs = refs[shard[0] - 1::shard[1]]
    summary = BatchSummary(out_dir, len(refs))
    if not refs:
        summary.status = "no records"
        return summary
    present = writers.existing_outputs(out_dir)
    if present and not (resume or overwrite):
        raise UsageError(
            f"{out_dir} already holds the outputs of a batch run ({', '.join(present)}): "
            "add --resume to continue that run, or --overwrite to replace its outputs")
    custom = _read_labels_csv(Path(labels_csv)) if labels_csv is not None else None

    runner_given = runner is not None
    n_workers = workers or parallel.auto_workers()  # 0: one per core
    if runner is None:
        bundle, runner, note = open_model(bundle_path, device, n_workers,
                                          warmup_rows=max(batch_size, max_windows))
    else:
        bundle, note = runner.bundle, getattr(runner, "note", None)
    label_sets = {name: list(labels) for name, labels in bundle.label_sets.items()}
    descriptions = {name: dict(bundle.label_descriptions.get(name, {})) for name in label_sets}
    if custom is not None:
        if CUSTOM_SET in label_sets:
            raise UsageError(f"the bundle already has a label set named {CUSTOM_SET!r}")
        try:
            if runner is not None:
                runner.add_label_set(CUSTOM_SET, list(custom), list(custom.values()))
            else:  # the workers, forked later, inherit the bundle with the new set
                add_label_set(bundle, CUSTOM_SET, list(custom), list(custom.values()))
        except RuntimeError as err:
            raise EcgReportError(f"--labels needs the text model: {err}") from err
        label_sets[CUSTOM_SET] = list(custom)
        descriptions[CUSTOM_SET] = dict(custom)
    if runner is not None:
        summary.provider = str(getattr(runner, "provider", ""))
        if workers > 1 and not runner_given:
            # open_model keeps the model here only for a GPU that ran it, or without fork
            why = ("the model runs on the GPU" if summary.provider == "CUDAExecutionProvider"
                   else "worker processes need Linux")
            note = "; ".join(filter(None, [note, f"--workers {workers}: {why}, so one process "
                                                  "does the work"]))
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
        "arguments": arguments,
        "label_sets": {name: len(labels) for name, labels in label_sets.items()},
    }

    if present and overwrite:
        writers.remove_outputs(out_dir)
    sink = BatchSink(out_dir, label_sets, descriptions, top_k)
    try:
        done = sink.open(resume=bool(present and resume), manifest_sha256=bundle.manifest_sha256)
    except ValueError as err:
        raise UsageError(str(err)) from None
    todo = [ref for ref in refs if _printable(ref.record_id) not in done]
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

    spec = _Spec(fs_hz=float(bundle.fs_hz), window_samples=int(bundle.window_samples),
                 min_s=min_seconds, max_windows=max_windows, comments=include_header_comments)
    pool = None
    try:
        save_run_info()
        with contextlib.ExitStack() as stack:
            if runner is None and todo:  # forked before the progress bar starts its thread
                n = min(n_workers, len(todo))
                pool = stack.enter_context(parallel.WorkerPool(n, bundle, sink, spec, beams,
                                                               max_tokens, batch_size))
                run_info["worker_processes"] = n
            progress = stack.enter_context(_progress(console, quiet))
            task = progress.add_task("ECGs", total=len(todo))

            def written(entries: list[dict]) -> None:
                _count(entries, summary, None if quiet else console)
                progress.advance(task, len(entries))

            if pool is not None:
                summary.n_not_processed = pool.run(todo, written, fail_fast)
            else:
                summary.n_not_processed = _pipeline(todo, spec, runner, sink, written,
                                                    batch_size, beams, max_tokens, fail_fast,
                                                    read_workers)
        summary.status = "stopped by --fail-fast" if summary.n_not_processed else "completed"
    except KeyboardInterrupt:
        summary.status = "interrupted"
        raise
    except BaseException as err:
        summary.status = f"failed: {type(err).__name__}"
        raise
    finally:
        sink.close()
        run_info["peak_rss_mib"] = _peak_memory(pool)
        save_run_info()
    return summary


def _peak_memory(pool) -> dict:
    """Peak resident memory of this process and of each worker, and their sum (an upper
    bound of the run's peak: the workers share much of their memory with this process)."""
    main = parallel.peak_rss_mib()
    workers = sorted(pool.peaks.values()) if pool is not None else []
    return {"main": round(main, 1), "workers": [round(w, 1) for w in workers],
            "total": round(main + sum(workers), 1)}


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Spec:
    fs_hz: float
    window_samples: int
    min_s: float
    max_windows: int
    comments: bool

    @property
    def window_s(self) -> float:
        return self.window_samples / self.fs_hz


@dataclass
class _Prepared:
    """A record read and preprocessed: ``windows`` (n_windows, 12, window_samples) float32,
    or None with ``entry["error"]`` set."""

    entry: dict
    windows: np.ndarray | None = None


def _prepare(ref: RecordRef, spec: _Spec) -> _Prepared:
    name = _printable(os.path.basename(ref.header_path))
    entry = {"record_id": _printable(ref.record_id), "path": _printable(str(ref.header_path)),
             "status": "failed", "error": None, "fs_hz": None, "duration_s": None,
             "leads_found": [], "missing_leads": [], "n_windows": 0, "window_s": spec.window_s,
             "window_starts_s": [], "warnings": [], "report": None, "scores": {},
             "top_findings": []}
    try:
        header = read_header(ref)
        entry.update(fs_hz=header.fs_hz, duration_s=round(header.duration_s, 3))
        try:
            plan = plan_windows(header.n_samples, header.fs_hz, spec.window_s, spec.min_s,
                                spec.max_windows)
        except ValueError as err:
            raise RecordError(f"{name}: {err}") from None
        windows = np.zeros((len(plan.starts), len(STANDARD_LEADS), spec.window_samples),
                           dtype=np.float32)
        used = np.zeros(len(STANDARD_LEADS), dtype=bool)
        for i, start in enumerate(plan.starts):
            record = read_record(ref, start, min(start + plan.window, header.n_samples))
            windows[i] = model_window(record.signal_mv, record.fs_hz, spec.fs_hz, spec.window_samples)
            used |= record.lead_mask
            entry["leads_found"] = record.leads_found
            entry["warnings"] += [w for w in record.warnings if w not in entry["warnings"]]
        entry.update(
            missing_leads=[lead for lead, ok in zip(STANDARD_LEADS, used) if not ok],
            n_windows=len(plan.starts),
            window_starts_s=[round(s / header.fs_hz, 3) for s in plan.starts])
        if plan.pad:
            entry["warnings"].append(f"shorter than one {spec.window_s:g} s window: "
                                     f"zero-padded by {plan.pad / header.fs_hz:.2f} s")
        if spec.comments:
            entry["header_comments"] = _header_comments(ref.header_path)
    except RecordError as err:
        entry["error"] = str(err)
        return _Prepared(entry)
    except Exception as err:  # one odd file must not stop the batch; the reason is kept
        logger.debug("unexpected error reading %s", name, exc_info=True)
        entry["error"] = f"{name}: unexpected error: {type(err).__name__}: {err}"
        return _Prepared(entry)
    return _Prepared(entry, windows)


def _header_comments(header_path: Path) -> list[str]:
    with open(header_path, "rb") as f:
        text = f.read(1 << 20).decode("utf-8", "replace")
    return [ln.strip()[1:].strip() for ln in text.splitlines() if ln.strip().startswith("#")]


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


# ---------------------------------------------------------------- inference


def aggregate_windows(embedding: np.ndarray) -> tuple[np.ndarray, int]:
    """A record's embedding from its windows' ``(n_windows, D)`` unit embeddings: their
    mean re-normalised to unit length, and the index of the window closest to it.

    >>> aggregate_windows(np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]))[1]
    1
    """
    mean = embedding.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:  # windows that cancel out: fall back to the first
        return embedding[0] / max(float(np.linalg.norm(embedding[0])), 1e-12), 0
    mean = mean / norm
    return mean, int(np.argmax(embedding @ mean))


def _pipeline(todo, spec, runner, sink, written, batch_size, beams, max_tokens, fail_fast,
              workers) -> int:
    """Read, batch, infer and write ``todo`` in order; return how many were not processed
    (stopped by ``fail_fast``). ``written(entries)`` is called after each batch is saved."""
    # Read a whole batch of single-window records ahead, so the next batch is ready when
    # the model finishes (a shorter queue left the model waiting ~0.3 ms per record).
    # Memory: at most depth * max_windows windows of 12 x window_samples float32.
    depth = max(2 * workers, batch_size, math.ceil(2 * batch_size / spec.max_windows))
    consumed = 0

    def until_failure(prepared):
        nonlocal consumed
        for item in prepared:
            consumed += 1
            yield item
            if fail_fast and item.windows is None:
                prepared.close()  # stop reading ahead; the batch so far is still analysed
                return

    with contextlib.closing(_read_ahead(lambda ref: _prepare(ref, spec), todo, workers,
                                        depth)) as prepared:
        for group in window_batches(until_failure(prepared), batch_size):
            _infer(group, runner, beams, max_tokens, sink, written)
    return len(todo) - consumed


def window_batches(items, batch_size: int):
    """Consecutive prepared records in model batches of at most ``batch_size`` windows:
    whole records only (one with more windows is a batch of its own); failed records go
    with the batch they fall in, to be listed in order."""
    group: list[_Prepared] = []
    n_windows = 0
    for item in items:
        size = 0 if item.windows is None else len(item.windows)
        if group and n_windows + size > batch_size:
            yield group
            group, n_windows = [], 0
        group.append(item)
        n_windows += size
    if group:
        yield group


def _infer(items: list[_Prepared], runner, beams: int, max_tokens: int, sink: BatchSink,
           written) -> None:
    entries = infer_entries(items, runner, beams, max_tokens, sink)
    sink.write(entries)
    written(entries)


def infer_entries(items: list[_Prepared], runner, beams: int, max_tokens: int,
                  sink: BatchSink) -> list[dict]:
    """Run the model on prepared records (one batch); return their finished entries."""
    ok = [item for item in items if item.windows is not None]
    if ok:
        enc = runner.encode(np.concatenate([item.windows for item in ok]))
        window_emb = np.asarray(enc.embedding, dtype=np.float32)
        record_emb, best_rows, offset = [], [], 0
        for item in ok:
            mean, best = aggregate_windows(window_emb[offset:offset + len(item.windows)])
            record_emb.append(mean)
            best_rows.append(offset + best)
            item.entry["report_window_start_s"] = item.entry["window_starts_s"][best]
            offset += len(item.windows)
        scores = runner.scores(np.stack(record_emb).astype(np.float32))
        scoring = getattr(runner.bundle, "scoring", "direct")
        # One window per record (the usual 10 s ECG) selects every row in order: skip
        # take(), which would copy the cross-attention cache (~25 MB per 64 windows).
        chosen = enc if best_rows == list(range(len(window_emb))) else enc.take(best_rows)
        texts = runner.write_reports(chosen, np.stack(record_emb).astype(np.float32),
                                     max_tokens=max_tokens, beams=beams)
        for row, (item, text) in enumerate(zip(ok, texts)):
            item.entry.update(status="ok", **text, scoring=scoring, **sink.findings(
                {name: np.asarray(scores[name])[row] for name in sink.label_sets}))
            item.windows = None  # free the signal before writing
    return [item.entry for item in items]


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


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} ECG/s", style="cyan")


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    _RateColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, disable=quiet)


# ---------------------------------------------------------------- arguments and resume


def _check_arguments(device, batch_size, max_windows, min_seconds, top_k, beams, max_tokens,
                     resume, overwrite, shard, workers=0) -> None:
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    for flag, value, least in [("--batch-size", batch_size, 1), ("--max-windows", max_windows, 1),
                               ("--top-k", top_k, 0), ("--beams", beams, 1), ("--workers", workers, 0),
                               ("--max-tokens", 1 if max_tokens is None else max_tokens, 1)]:
        if value < least:
            raise UsageError(f"{flag} must be at least {least}, got {value}")
    if not min_seconds >= 0:
        raise UsageError(f"--min-seconds must be >= 0, got {min_seconds}")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other: choose one")
    if shard is not None and not 1 <= shard[0] <= shard[1]:
        raise UsageError(f"shard K/N needs 1 <= K <= N, got {shard[0]}/{shard[1]}")


def _read_labels_csv(path: Path) -> dict[str, str]:
    """``label,description`` rows -> {label: description} (a header row is skipped; an
    empty description is the label itself)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read --labels file {path}: {err}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["label", "description"]:
        rows = rows[1:]
    labels: dict[str, str] = {}
    for row in rows:
        label = row[0].strip()
        if label in labels:
            raise UsageError(f"--labels file {path}: label {label!r} appears twice")
        labels[label] = row[1].strip() if len(row) > 1 and row[1].strip() else label
    if not labels:
        raise UsageError(f"--labels file {path} has no labels (expected rows: label,description)")
    return labels


def _printable(text: str) -> str:
    """A file name as text even if it is not valid UTF-8 (``\\xe9`` for a stray byte)."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
