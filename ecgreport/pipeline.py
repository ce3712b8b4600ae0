"""The per-record pipeline: one WFDB record in, one ``records.jsonl`` entry out.

The steps, in the order a record passes through them:

1. :func:`prepare_record` reads the header (sampling rate, length) and plans windows of
   ``spec.window_s`` seconds in the record's own samples with
   :func:`~ecgreport.signal.plan_windows` (at most ``max_windows``, spread evenly; a record
   shorter than ``min_seconds`` fails with the reason). Only the planned spans are read
   (``read_record(ref, start, stop)``), so a 24 h Holter is never loaded whole.
2. :func:`record_fields` sees those spans at the record's own rate and units
   (:class:`NativeSignal`) and returns fields for the outputs. **A new per-record step on
   the signal (a measurement, a signal check, a picture) goes there.**
3. Each window is resampled to the model's rate, normalised
   (:func:`~ecgreport.signal.model_window`) and brought to exactly ``window_samples``: a
   record shorter than one window is zero-padded at the end, after normalisation.
4. :func:`window_batches` groups consecutive records into model batches of whole records
   (up to ``batch_size`` windows); :func:`infer_entries` encodes them; a record's
   embedding is the mean of its window embeddings re-normalised (:func:`aggregate_windows`),
   its zero-shot scores the cosine similarities with each label's text embedding.
5. The report is generated from one window, the one whose embedding is closest to the
   record's embedding (the most typical window): decoding from the mean would feed the
   decoder an input that no real window produced.
6. :meth:`~ecgreport.outputs.sink.BatchSink.render` formats the entry as report text,
   JSONL and CSV lines; :func:`write_pages` draws the record's page (12-lead picture of
   the report's window, from the native signal, and the report) when ``--pictures`` asks.

Callers: :mod:`ecgreport.batch` (one process, reading ahead in threads) and
:mod:`ecgreport.parallel` (worker processes, a chunk of records each). This module
imports neither; data flows from here to them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgreport.errors import RecordError
from ecgreport.leads import STANDARD_LEADS
from ecgreport.outputs import overview, writers
from ecgreport.measure.record import record_measurements, report_checks
from ecgreport.records import HeaderInfo, RecordRef, read_header, read_record
from ecgreport.records.discover import printable
from ecgreport.signal import model_window, plan_windows
from ecgreport.signal.checks import MIN_LEADS, check_record, too_few_leads

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordSpec:
    """How every record is cut for the model and described: the bundle's ``fs_hz`` and
    ``window_samples``; the run's ``min_s``, ``max_windows``, header ``comments`` option;
    ``root``, the input folder that the ``path`` of an entry is relative to (folder names
    often identify patients), and ``absolute_paths``, which adds ``absolute_path``."""

    fs_hz: float
    window_samples: int
    min_s: float
    max_windows: int
    comments: bool
    min_leads: int = MIN_LEADS
    keep_signal: bool = False   # keep the native spans until the pictures are drawn
    root: str = ""
    absolute_paths: bool = False

    @property
    def window_s(self) -> float:
        return self.window_samples / self.fs_hz

    @classmethod
    def of(cls, bundle, options) -> "RecordSpec":
        """The spec of a run: model input from ``bundle``, the rest from BatchOptions."""
        folder = os.path.abspath(options.folder)
        return cls(fs_hz=float(bundle.fs_hz), window_samples=int(bundle.window_samples),
                   min_s=options.min_seconds, max_windows=options.max_windows,
                   comments=options.include_header_comments, min_leads=options.min_leads,
                   keep_signal=options.pictures != "none",
                   root=folder if os.path.isdir(folder) else os.path.dirname(folder),
                   absolute_paths=options.absolute_paths)


@dataclass
class NativeSignal:
    """A record as read, before any resampling: what a per-record step sees.

    ``spans_mv``: one ``(12, n_samples)`` float32 array in mV per planned window, leads in
    :data:`~ecgreport.leads.STANDARD_LEADS` order (a missing lead is zeros, see
    ``lead_mask``), at ``fs_hz``; ``starts``: each span's first sample in the record;
    ``header``: the parsed header (``n_samples``, ``duration_s`` ...).
    """

    spans_mv: list[np.ndarray]
    starts: list[int]
    fs_hz: float
    lead_mask: np.ndarray
    header: HeaderInfo
    derived_leads: tuple[str, ...] = ()  # limb leads computed from two of I, II, III


def record_fields(signal: NativeSignal) -> dict:
    """Fields that per-record steps add to a record's ``records.jsonl`` entry.

    The place for a step that needs the record's own signal (measurements, signal checks,
    pictures): call it here and return its fields, e.g. ``{"heart_rate_bpm": 72.0}``. A
    step that raises RecordError fails the record with its message.
    """
    fields = {}
    # Signal checks (ecgreport.signal.checks): "quality" verdict and "signal_checks".
    fields.update(check_record(signal.spans_mv, signal.starts, signal.fs_hz, signal.lead_mask,
                               signal.derived_leads))
    # Measurements (ecgreport.measure): rate, intervals and axes, with reasons for gaps.
    fields.update(record_measurements(signal.spans_mv, signal.fs_hz, signal.lead_mask))
    return fields


@dataclass
class Prepared:
    """A record read and preprocessed: ``windows`` ``(n_windows, 12, window_samples)``
    float32 at the model's rate, or None with ``entry["error"]`` set."""

    entry: dict
    windows: np.ndarray | None = None
    native: NativeSignal | None = None   # with ``spec.keep_signal``, for the picture


def prepare_record(ref: RecordRef, spec: RecordSpec) -> Prepared:
    """Steps 1-3 for one record: read, per-record fields, model windows. Never raises for
    a bad record: the reason goes into ``entry["error"]``."""
    name = printable(os.path.basename(ref.header_path))
    header_path = str(ref.header_path)
    path = os.path.relpath(header_path, spec.root) if spec.root else header_path
    entry = {"record_id": printable(ref.record_id), "path": printable(path),
             **({"absolute_path": printable(header_path)} if spec.absolute_paths else {}),
             "status": "failed", "error": None, "fs_hz": None, "duration_s": None,
             "leads_found": [], "missing_leads": [], "derived_leads": [], "n_windows": 0, "window_s": spec.window_s,
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
        spans, derived = [], []
        for i, start in enumerate(plan.starts):
            record = read_record(ref, start, min(start + plan.window, header.n_samples))
            spans.append(record.signal_mv)
            windows[i] = model_window(record.signal_mv, record.fs_hz, spec.fs_hz,
                                      spec.window_samples)
            used |= record.lead_mask
            derived += [lead for lead in record.derived_leads if lead not in derived]
            entry["leads_found"] = record.leads_found
            entry["warnings"] += [w for w in record.warnings if w not in entry["warnings"]]
        entry.update(
            missing_leads=[lead for lead, ok in zip(STANDARD_LEADS, used) if not ok],
            derived_leads=derived, n_windows=len(plan.starts),
            window_starts_s=[round(s / header.fs_hz, 3) for s in plan.starts])
        if reason := too_few_leads(used, derived, entry["leads_found"], spec.min_leads):
            raise RecordError(f"{name}: {reason}")
        if plan.pad:
            entry["warnings"].append(f"shorter than one {spec.window_s:g} s window: "
                                     f"zero-padded by {plan.pad / header.fs_hz:.2f} s")
        if spec.comments:
            entry["header_comments"] = header_comments(ref.header_path)
        native = NativeSignal(spans, list(plan.starts), header.fs_hz, used, header, tuple(derived))
        entry.update(record_fields(native))
    except RecordError as err:
        entry["error"] = str(err)
        return Prepared(entry)
    except Exception as err:  # one odd file must not stop the batch; the reason is kept
        logger.debug("unexpected error reading %s", name, exc_info=True)
        entry["error"] = f"{name}: unexpected error: {type(err).__name__}: {err}"
        return Prepared(entry)
    return Prepared(entry, windows, native if spec.keep_signal else None)


def header_comments(header_path: Path) -> list[str]:
    """The ``#`` comment lines of a header, without the ``#`` (first MiB only)."""
    with open(header_path, "rb") as f:
        text = f.read(1 << 20).decode("utf-8", "replace")
    return [ln.strip()[1:].strip() for ln in text.splitlines() if ln.strip().startswith("#")]


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


def window_batches(items, batch_size: int):
    """Consecutive prepared records in model batches of at most ``batch_size`` windows:
    whole records only (one with more windows is a batch of its own); failed records go
    with the batch they fall in, to be listed in order."""
    group: list[Prepared] = []
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


def infer_entries(items: list[Prepared], runner, beams: int, max_tokens: int | None,
                  sink) -> list[dict]:
    """Steps 4-5 for one model batch: encode, score, write the reports' text; returns the
    finished entries in order (failed records unchanged). ``sink``
    (:class:`~ecgreport.outputs.sink.BatchSink`) turns scores into findings."""
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
        record_emb = np.stack(record_emb).astype(np.float32)
        scores = runner.scores(record_emb)
        scoring = getattr(runner.bundle, "scoring", "direct")
        data_name = getattr(runner.bundle, "training_data_name", "PTB-XL")
        # One window per record (the usual 10 s ECG) selects every row in order: skip
        # take(), which would copy the cross-attention cache (~25 MB per 64 windows).
        chosen = enc if best_rows == list(range(len(window_emb))) else enc.take(best_rows)
        texts = runner.write_reports(chosen, record_emb,
                                     max_tokens=max_tokens, beams=beams)
        for row, (item, text) in enumerate(zip(ok, texts)):
            if text.get("similar_training_report"):
                item.entry["training_data"] = data_name
            item.entry.update(status="ok", **text, scoring=scoring, **sink.findings(
                {name: np.asarray(scores[name])[row] for name in sink.label_sets}))
            item.entry.update(report_checks(item.entry))  # text vs measurements
            item.windows = None  # free the signal before writing
    return [item.entry for item in items]


def process_records(refs, spec: RecordSpec, runner, options, sink) -> list[dict]:
    """Steps 1-5 for a list of records, in order, in this thread (what a worker process
    does with its chunk); ``options``: the run's BatchOptions."""
    entries: list[dict] = []
    for group in window_batches((prepare_record(ref, spec) for ref in refs), options.batch_size):
        entries += infer_entries(group, runner, options.beams, options.max_tokens, sink)
        write_pages(group, options)
    return entries


def write_pages(items: list[Prepared], options) -> None:
    """Step 6b: the pages ``options.pictures`` asks for (:mod:`ecgreport.outputs.overview`),
    each drawn from the native signal of the window the report was written from (a failed
    record's is read again from its file, if it can be). Written before the record's log
    lines, so a record listed in ``records.jsonl`` has its page, and made durable by the
    sink's next flush of the output file system along with the reports (a page lost in a
    crash can be drawn again: ``ecgreport overview OUT --record ID``)."""
    files = []
    folder = Path(options.folder).resolve()
    root = folder if folder.is_dir() else folder.parent  # entries' paths are relative to it
    for item in items:
        native, item.native = item.native, None
        if not overview.wants_page(item.entry, options.pictures):
            continue
        window = None
        if native is not None and item.entry.get("report_window_start_s") is not None:
            best = item.entry["window_starts_s"].index(item.entry["report_window_start_s"])
            window = (native.spans_mv[best], native.fs_hz, native.lead_mask,
                      list(native.derived_leads))
        files.append(overview.page_file(options.out_dir, item.entry, window, root=root))
    if files:
        writers.atomic_write_many(files, sync=False)
