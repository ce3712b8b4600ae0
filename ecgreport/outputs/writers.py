"""The batch outputs: atomic files, the growing CSV/JSONL logs, report text, and merging.

Every file is written so that a reader never sees half of it:

* whole files (``run.json``, a rewritten log) go to a temporary file in the same folder,
  are fsynced, then renamed over the target (``os.replace`` is atomic on one file system);
* reports (:func:`atomic_write_many`) are renamed into place the same way but made
  durable together, with one ``syncfs`` of the output file system (Linux) rather than
  one fsync each (an fsync costs ~4 ms on an ext4 disk, more than reading and analysing
  the record). A crash can leave a report empty or missing only for a record that the
  logs do not list yet;
* ``diagnoses.csv`` and ``records.jsonl`` grow by whole lines, appended only after the
  reports they list are durable: one ``write`` of complete lines, then flush and fsync
  (:class:`~ecgreport.outputs.sink.BatchSink` does this about once a second, not per
  batch). A run killed mid-write can leave at most one partial last line, which
  :func:`read_jsonl` ignores and ``--resume`` rewrites away.

A ``records.jsonl`` line is the source of truth for a record; the CSV row and the report
text are both derived from it (:func:`csv_row`, :func:`report_text`), so ``--resume`` and
:func:`merge_outputs` can rebuild them consistently. ``measurements.csv`` is rebuilt from
``records.jsonl`` whenever a run closes its logs (:func:`write_measurements_csv`), so it
holds exactly the measurements the JSONL holds.

Merging the outputs of ``--shard K/N`` runs::

    ecgreport merge OUT1 OUT2 ... --into MERGED
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import functools
import io
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ecgreport import DISCLAIMER, __version__
from ecgreport.measure import MEASUREMENT_KEYS
from ecgreport.measure.record import csv_values, measurement_lines

REPORTS_DIR = "reports"
DIAGNOSES_CSV = "diagnoses.csv"
RECORDS_JSONL = "records.jsonl"
RUN_JSON = "run.json"
INDEX_HTML = "index.html"   # the run's overview and record pages (ecgreport.outputs.overview)
PAGES_DIR = "pages"
MEASUREMENTS_CSV = "measurements.csv"  # rebuilt from records.jsonl when a run's logs close
OUTPUT_NAMES = (REPORTS_DIR, DIAGNOSES_CSV, RECORDS_JSONL, RUN_JSON, INDEX_HTML, PAGES_DIR,
                MEASUREMENTS_CSV)

# Leading and trailing CSV columns; the label columns ("<set>:<label>") go in between.
# quality: the signal-check verdict; signal_checks: "check (leads); ..."; the lead columns
# list the standard leads zero-filled or derived (space-separated), so that a spreadsheet
# shows which records were read from fewer than 12 recorded leads.
CSV_HEAD = ("record_id", "status", "quality", "signal_checks", "missing_leads", "derived_leads")
# When the bundle has thresholds, one 0/1 call column per distinct finding ("present:<label>")
# follows the label columns.
CALL_PREFIX = "present"
CSV_TAIL = ("top_findings", "error")
SCORE_DECIMALS = 4


# ---------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_open(path: Path, encoding: str = "utf-8",
                newline: str | None = None) -> Iterator[io.TextIOBase]:
    """Open a text file for writing that appears at ``path`` only once complete.

    The temporary file (``.<name>.<random>.tmp`` in the same folder) is removed if the
    block raises, KeyboardInterrupt included.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _replacing(path, encoding, newline, fsync=True) as f:
        yield f


@contextlib.contextmanager
def _replacing(path: Path, encoding: str, newline: str | None, fsync: bool):
    """A temporary file beside ``path``, renamed over it on success, removed on any error."""
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new empty file ``.<name>.<random>.tmp`` beside ``path``, opened for writing.

    Created with mode 0666 less the umask, like any file a tool writes (the outputs are
    often shared on a server), where ``tempfile.mkstemp`` would make it 0600 whatever the
    umask; the random part and ``O_EXCL`` keep two writers apart as mkstemp does.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_many(files: Iterable[tuple[Path, str]], sync: bool = True) -> list[Path]:
    """Write several ``(path, text)`` files atomically; with ``sync``, all are durable once
    this returns.

    Each goes to a temporary file beside its target and is renamed over it; then one
    ``syncfs`` per file system flushes them all (data and renames together). Where
    ``syncfs`` is missing (not Linux), each file is fsynced before its rename, as
    :func:`atomic_open` does. A crash before the sync can leave a target empty or
    missing, never holding part of its text.

    Returns one folder per file system written to: without ``sync``, pass them to
    :func:`sync_folders` later (one flush for many calls).
    """
    sync_fs = _syncfs()
    folder_of_device: dict[int, Path] = {}   # one folder per file system, to sync
    made: set[Path] = set()
    for path, text in files:
        path = Path(path)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
            folder_of_device.setdefault(os.stat(path.parent).st_dev, path.parent)
        with _replacing(path, "utf-8", None, fsync=sync_fs is None) as f:
            f.write(text)
    if sync:
        sync_folders(folder_of_device.values())
    return list(folder_of_device.values())


def sync_folders(folders: Iterable[Path]) -> None:
    """Flush the file systems holding ``folders`` (``syncfs``; nothing where it is missing,
    since :func:`atomic_write_many` then fsyncs each file itself)."""
    sync_fs = _syncfs()
    if sync_fs is not None:
        for folder in folders:
            sync_fs(folder)


@functools.lru_cache(maxsize=1)
def _syncfs():
    """``syncfs(2)`` as a function of a folder (one flush of the file system holding it)
    on Linux, or None where the C library lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc_syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    libc_syncfs.argtypes = [ctypes.c_int]
    libc_syncfs.restype = ctypes.c_int

    def sync(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc_syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs failed: {os.strerror(err)}", str(folder))
        finally:
            os.close(fd)

    return sync


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class AppendLog:
    """A text file that grows by whole chunks of lines, each one durable once written."""

    def __init__(self, path: Path, newline: str | None = None):
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8", newline=newline)

    def append(self, text: str) -> None:
        if not text:
            return
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` for one run: a second ``batch`` (or ``--resume``) writing into the
    same folder at the same time would interleave its log lines with ours. The lock is
    ``flock`` on the folder itself (no lock file is left behind); the kernel drops it when
    the last process holding it ends, however it ends. Raises UsageError if another run
    holds it. Creates ``out_dir``, and removes it again if it is still empty at the end (a
    run that failed before writing anything leaves no folder behind)."""
    import fcntl

    from ecgreport.errors import UsageError

    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{out_dir} is being written by another ecgreport batch run: wait "
                             "for it to finish (or stop it), or choose another --out") from None
        yield
    finally:
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):  # not empty: the run's outputs, kept
                out_dir.rmdir()


def existing_outputs(out_dir: Path) -> list[str]:
    """Names of batch outputs already present in ``out_dir`` (other files do not count)."""
    return [name for name in OUTPUT_NAMES if (Path(out_dir) / name).exists()]


def remove_outputs(out_dir: Path) -> None:
    """Delete the batch outputs in ``out_dir`` (for ``--overwrite``); nothing else."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir / REPORTS_DIR, ignore_errors=True)
    shutil.rmtree(out_dir / PAGES_DIR, ignore_errors=True)
    for name in (DIAGNOSES_CSV, RECORDS_JSONL, RUN_JSON, INDEX_HTML, MEASUREMENTS_CSV):
        with contextlib.suppress(FileNotFoundError):
            (out_dir / name).unlink()


def remove_temp_files(out_dir: Path) -> int:
    """Delete the temporary files (``.<name>.<random>.tmp``) that a process killed while
    writing leaves behind: those of the logs and ``run.json`` in ``out_dir``, and any in
    the ``reports/`` tree (nothing else there is touched). Returns how many."""
    out_dir = Path(out_dir)
    logs = tuple(f".{name}." for name in (DIAGNOSES_CSV, RECORDS_JSONL, RUN_JSON))
    found = [out_dir / name for name in _names(out_dir) if name.startswith(logs)]
    for folder, _, names in os.walk(out_dir / REPORTS_DIR):
        found += [Path(folder, name) for name in names if name.startswith(".")]
    removed = 0
    for path in found:
        if path.name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def report_path(out_dir: Path, record_id: str) -> Path:
    """``out_dir/reports/<record_id>.txt``; subfolders of the record id are mirrored."""
    parts = [p for p in record_id.split("/") if p not in ("", ".", "..")] or ["_"]
    return Path(out_dir, REPORTS_DIR, *parts[:-1], parts[-1] + ".txt")


# ---------------------------------------------------------------- JSONL and CSV


def jsonl_line(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False) + "\n"


def read_jsonl(path: Path) -> Iterator[dict]:
    """The entries of a ``records.jsonl``; a truncated or corrupt line is skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "record_id" in entry:
                yield entry


def label_columns(label_sets: dict[str, list[str]]) -> list[str]:
    """One CSV column per label of every set: ``"<set>:<label>"``, sets in order."""
    return [f"{name}:{label}" for name, labels in label_sets.items() for label in labels]


def call_columns(call_labels: Iterable[str]) -> list[str]:
    """One 0/1 column per called finding: ``"present:<label>"`` (see BatchSink.call_labels)."""
    return [f"{CALL_PREFIX}:{label}" for label in call_labels]


def csv_header(columns: list[str]) -> list[str]:
    return [*CSV_HEAD, *columns, *CSV_TAIL]


def csv_row(entry: dict, columns: list[str]) -> list[str]:
    """The ``diagnoses.csv`` row of a ``records.jsonl`` entry; empty scores if it failed."""
    scores = entry.get("scores") or {}
    calls = entry.get("calls") or {}
    cells = []
    for set_name, label in _split_columns(tuple(columns)):
        if set_name == CALL_PREFIX:
            call = calls.get(label)
            cells.append("" if call is None else str(int(call)))
            continue
        value = scores.get(set_name, {}).get(label)
        cells.append("" if value is None else f"{value:.{SCORE_DECIMALS}f}")
    return [entry["record_id"], entry["status"], entry.get("quality") or "",
            format_signal_checks(entry.get("signal_checks") or []),
            " ".join(entry.get("missing_leads") or []), " ".join(entry.get("derived_leads") or []),
            *cells, format_top_findings(entry.get("top_findings") or []), entry.get("error") or ""]


def format_signal_checks(findings: list[dict]) -> str:
    """``"baseline_drift (V5, V6); limb_leads_inconsistent"``: each finding's check, with
    its leads when it concerns some leads only (see ecgreport.signal.checks)."""
    return "; ".join(f"{f['check']} ({', '.join(f['leads'])})" if f.get("leads") else f["check"]
                     for f in findings)


@functools.lru_cache(maxsize=8)
def _split_columns(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(set_name, label) for set_name, _, label in (c.partition(":") for c in columns)]


def csv_text(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def read_csv_header(path: Path) -> list[str] | None:
    with open(path, encoding="utf-8", newline="") as f:
        return next(csv.reader(f), None)


def format_top_findings(findings: list[dict]) -> str:
    """``"NORM 0.4123 (superclass #1); SR 0.3901 (rhythm #1)"``."""
    return "; ".join(
        f"{f['label']} {f['similarity']:.{SCORE_DECIMALS}f} ({f['set']} #{f['rank']})"
        for f in findings
    )


def rewrite_logs(out_dir: Path, entries: Iterable[dict], columns: list[str]) -> None:
    """Atomically replace ``records.jsonl`` and ``diagnoses.csv`` by ``entries``.

    ``entries`` is consumed once, streaming (it may be a generator over the old log).
    """
    out_dir = Path(out_dir)
    with atomic_open(out_dir / RECORDS_JSONL) as jsonl, \
            atomic_open(out_dir / DIAGNOSES_CSV, newline="") as diagnoses:
        writer = csv.writer(diagnoses, lineterminator="\n")
        writer.writerow(csv_header(columns))
        for entry in entries:
            jsonl.write(jsonl_line(entry))
            writer.writerow(csv_row(entry, columns))


def write_measurements_csv(out_dir: Path) -> None:
    """Atomically (re)write ``measurements.csv`` from ``records.jsonl``: one row per record,
    ``record_id``, ``status``, the measurement keys, and ``not_measured`` (key: reason)."""
    out_dir = Path(out_dir)
    if not (out_dir / RECORDS_JSONL).is_file():
        return
    with atomic_open(out_dir / MEASUREMENTS_CSV, newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["record_id", "status", *MEASUREMENT_KEYS, "not_measured"])
        for entry in read_jsonl(out_dir / RECORDS_JSONL):
            writer.writerow([entry["record_id"], entry["status"], *csv_values(entry)])


# ---------------------------------------------------------------- report text


def report_text(entry: dict) -> str:
    """The ``reports/<record>.txt`` of a successful ``records.jsonl`` entry."""
    lines = [
        f"ecgreport {entry.get('tool_version', __version__)}: machine-generated ECG report",
        "",
        DISCLAIMER,
        "",
        f"Record:   {entry['record_id']}",
        f"File:     {entry['path']}",
        *([f"Absolute: {entry['absolute_path']}"] if entry.get("absolute_path") else []),
        f"Input:    {entry['fs_hz']:g} Hz, {entry['duration_s']:.1f} s, "
        f"leads {', '.join(entry['leads_found']) or 'none'}",
        f"Analysed: {len(entry['window_starts_s'])} window(s) of {entry['window_s']:g} s "
        f"starting at {', '.join(f'{s:g}' for s in entry['window_starts_s'])} s; "
        f"report from the window at {entry['report_window_start_s']:g} s",
        *_signal_check_lines(entry),
        "",
        *(measurement_lines(entry) + [""] if entry.get("measurements") else []),
        "Generated report:",
        f"  {entry['report'] or '(empty)'}",
    ]
    if entry.get("measurement_flags"):
        lines += ["", "Checked against the measurements:"]
        lines += [f"  - {flag}" for flag in entry["measurement_flags"]]
        if entry.get("report_checked") not in (None, entry["report"]):
            lines += ["  Report with the corrections:", f"  {entry['report_checked']}"]
    if entry.get("decoder_report") not in (None, entry["report"]):
        lines += ["", "The decoder alone wrote:", f"  {entry['decoder_report'] or '(empty)'}"]
    if entry.get("similar_training_report"):
        lines += ["", f"Most similar training reports (consensus of the nearest {entry.get('training_data', 'PTB-XL')} training ECGs):",
                  f"  {entry['similar_training_report']}"]
    if entry.get("findings_present") is not None:
        lines += _present_lines(entry)
    elif entry.get("scoring") == "knn":
        lines += ["", "Top zero-shot findings. Each number is the mean cosine similarity (-1 to 1) between",
                  "the label's text and the reports of the most similar training ECGs; these are",
                  "NOT probabilities: compare them within one label set."]
    else:
        lines += ["", "Top zero-shot findings. The numbers are cosine similarities (-1 to 1) between the ECG",
                  "and each label's text, NOT probabilities; compare them within one label set."]
    for i, f in enumerate(entry["top_findings"] if entry.get("findings_present") is None else [], 1):
        described = f["label"] if f["description"] in ("", f["label"]) \
            else f"{f['label']} ({f['description']})"
        lines.append(f"  {i}. {described}: {f['similarity']:.{SCORE_DECIMALS}f}, "
                     f"rank {f['rank']} of {f['set_size']} in {f['set']}")
    lines += ["", "Input warnings:"]
    lines += [f"  - {w}" for w in entry["warnings"]] or ["  none"]
    if entry.get("header_comments") is not None:
        lines += ["", "Header comments (copied with --include-header-comments):"]
        lines += [f"  {c}" for c in entry["header_comments"]] or ["  none"]
    return "\n".join(lines) + "\n"


def _signal_check_lines(entry: dict) -> list[str]:
    """The report's signal-check block, before the interpretation (as printed ECGs put
    their quality statements first); nothing for entries made before the checks existed."""
    if entry.get("quality") is None:
        return []
    verdict = entry["quality"]
    if verdict == "unreadable":
        verdict += ": a reader should not interpret this record as it is"
    lines = ["", f"Signal checks: {verdict}"]
    lines += [f"  - {f['message']}" for f in entry.get("signal_checks") or []]
    if entry.get("derived_leads"):
        lines.append(f"  - derived from other leads: {', '.join(entry['derived_leads'])}")
    if entry.get("missing_leads"):
        lines.append(f"  - missing (zero-filled): {', '.join(entry['missing_leads'])}")
    return lines


def _present_lines(entry: dict) -> list[str]:
    """The findings called present, grouped by label set, each finding once."""
    basis = (["Findings called present: the mean cosine similarity (-1 to 1, NOT a probability)",
              "between the label's text and the reports of the most similar training ECGs"]
             if entry.get("scoring") == "knn" else
             ["Findings called present: the cosine similarity (-1 to 1, NOT a probability) between",
              "the ECG and the label's text"])
    lines = ["", *basis[:-1], basis[-1] + " is at or above the label's threshold, chosen on",
             "PTB-XL fold 9 from the statements in its own reports. Each finding is listed once,",
             "under the first label set that has it."]
    found = entry["findings_present"]
    if not found:
        return lines + ["  none"]
    for set_name in dict.fromkeys(f["set"] for f in found):
        items = [f for f in found if f["set"] == set_name]
        lines.append(f"  {set_name}:")
        for f in items:
            described = f["label"] if f["description"] in ("", f["label"]) else f"{f['label']} ({f['description']})"
            lines.append(f"    - {described}: {f['similarity']:.{SCORE_DECIMALS}f} "
                         f"(threshold {f['threshold']:.{SCORE_DECIMALS}f})")
    return lines


# ---------------------------------------------------------------- merging shards


def merge_outputs(dirs: list[Path], into: Path) -> dict:
    """Merge the outputs of several batch runs (e.g. ``--shard 1/3`` ... ``3/3``) into one.

    ``records.jsonl`` lines are merged in record order (sorted record ids, the order of
    one unsharded run), ``diagnoses.csv`` is rebuilt from them with the header once,
    reports are copied, and ``run.json`` sums the counts and lists the source runs.
    Raises ValueError if the runs' label columns differ, if a record appears in two runs,
    or if ``into`` already holds outputs. Returns the merged ``run.json``.

    Memory: one (record id, file, offset) triple per record; the entries themselves are
    read twice from disk, never held all at once.

    >>> merge_outputs([Path("out-1"), Path("out-2")], Path("out"))  # doctest: +SKIP
    """
    dirs = [Path(d) for d in dirs]
    into = Path(into)
    if not dirs:
        raise ValueError("nothing to merge: give at least one output folder")
    if existing_outputs(into):
        raise ValueError(f"{into} already holds batch outputs: merge into an empty folder")
    columns, runs, seen = None, [], {}
    for i, d in enumerate(dirs):
        if not (d / RECORDS_JSONL).is_file():
            raise ValueError(f"{d} has no {RECORDS_JSONL}: not a batch output folder")
        header = read_csv_header(d / DIAGNOSES_CSV) if (d / DIAGNOSES_CSV).is_file() else None
        these = header[len(CSV_HEAD):-len(CSV_TAIL)] if header else None
        if these is not None and columns is not None and these != columns:
            raise ValueError(f"{d}/{DIAGNOSES_CSV} has other label columns than {dirs[0]}")
        columns = these if these is not None else columns
        for offset, entry in _jsonl_with_offsets(d / RECORDS_JSONL):
            if entry["record_id"] in seen:
                raise ValueError(f"record {entry['record_id']} appears in more than one run")
            seen[entry["record_id"]] = (i, offset)
        runs.append(json.loads((d / RUN_JSON).read_text()) if (d / RUN_JSON).is_file() else {})

    def entries():
        files = [open(d / RECORDS_JSONL, "rb") for d in dirs]
        try:
            for record_id in sorted(seen):
                i, offset = seen[record_id]
                files[i].seek(offset)
                yield json.loads(files[i].readline().decode("utf-8", "replace"))
        finally:
            for f in files:
                f.close()

    into.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        for sub in (REPORTS_DIR, PAGES_DIR):  # record pages link to ../index.html: still valid
            if (d / sub).is_dir():
                shutil.copytree(d / sub, into / sub, dirs_exist_ok=True)
    rewrite_logs(into, entries(), columns or [])
    write_measurements_csv(into)
    counts: dict[str, int] = {}
    for run in runs:
        for key, value in (run.get("counts") or {}).items():
            counts[key] = counts.get(key, 0) + int(value)
    merged = {
        "tool": "ecgreport",
        "version": __version__,
        "status": "merged",
        "merged_from": [str(d) for d in dirs],
        "bundle": next((r["bundle"] for r in runs if r.get("bundle")), None),
        "counts": counts,
        "runs": runs,
    }
    shas = {(r.get("bundle") or {}).get("manifest_sha256") for r in runs} - {None}
    if len(shas) > 1:
        merged["warning"] = "the runs used different model bundles"
    write_json(into / RUN_JSON, merged)
    return merged


def _jsonl_with_offsets(path: Path) -> Iterator[tuple[int, dict]]:
    """``(byte offset, entry)`` for each entry :func:`read_jsonl` would give."""
    with open(path, "rb") as f:
        offset = 0
        for line in f:
            start, offset = offset, offset + len(line)
            try:
                entry = json.loads(line.decode("utf-8", "replace"))
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "record_id" in entry:
                yield start, entry
