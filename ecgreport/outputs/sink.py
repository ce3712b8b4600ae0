"""The outputs of one batch run as they grow: reports first, then one append to each log.

:class:`BatchSink` turns finished ``records.jsonl`` entries into files. Reports are
written (atomically) as each batch arrives; their log lines follow once the reports are
durable, about once a second (and at the end, or on Ctrl-C), the two logs getting them in
one append each with Ctrl-C and SIGTERM held off in between. So a record listed as ``ok`` always has
its report, and ``diagnoses.csv`` never lags ``records.jsonl`` by half a batch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ecgreport.lifecycle import deferred_signals
from ecgreport.outputs import writers


FLUSH_EVERY_S = 1.0          # log lines reach records.jsonl/diagnoses.csv at least this often
FLUSH_EVERY_RECORDS = 2048   # or sooner, so that what waits in memory stays small


class BatchSink:
    """Writes one run's outputs into ``out_dir``.

    ``label_sets``: {set: [label, ...]} in column order; ``descriptions``: {set: {label:
    text}}; ``top_k``: findings listed per record; ``thresholds``: {set: {label: similarity}}
    (the bundle's, see ``Bundle.thresholds``) to call findings present, or None.

    Calls: a finding is present when its similarity is at or above its threshold. A label
    name found in several sets (NORM in superclass and subclass, NST_ in subclass and form)
    is one statement: it is called once, by the first set that has a threshold for it, and
    gets one ``present:<label>`` column in ``diagnoses.csv``.
    """

    def __init__(self, out_dir: Path, label_sets: dict[str, list[str]],
                 descriptions: dict[str, dict[str, str]], top_k: int,
                 thresholds: dict[str, dict[str, float]] | None = None):
        self.out_dir = Path(out_dir)
        self.label_sets, self.descriptions, self.top_k = label_sets, descriptions, top_k
        # (set, label index, label, threshold) of each finding that can be called, each name once.
        self.call_labels: list[tuple[str, int, str, float]] = []
        seen: set[str] = set()
        for name, labels in label_sets.items():
            for j, label in enumerate(labels):
                t = (thresholds or {}).get(name, {}).get(label)
                if t is not None and label not in seen:
                    seen.add(label)
                    self.call_labels.append((name, j, label, float(t)))
        self.columns = writers.label_columns(label_sets) + writers.call_columns(c[2] for c in self.call_labels)
        # For the labels of all sets in one row: each one's set number and index in its set.
        sizes = [len(labels) for labels in label_sets.values()]
        self._positions = (np.repeat(np.arange(len(sizes)), sizes).astype(np.int64),
                           np.concatenate([np.arange(n) for n in sizes] or [np.zeros(0)]).astype(np.int64))
        self._jsonl: writers.AppendLog | None = None
        self._csv: writers.AppendLog | None = None
        self._unsynced: dict[str, Path] = {}       # folders of reports not flushed yet
        self._pending: list[tuple[str, str]] = []  # their (jsonl, csv) lines
        self._flushed_at = time.monotonic()

    def open(self, resume: bool, manifest_sha256: str) -> set[str]:
        """Start the logs; with ``resume``, keep the earlier run's ``ok`` records and
        return their ids (see :func:`prepare_resume`; raises ValueError if incompatible)."""
        done: set[str] = set()
        if resume:
            done = prepare_resume(self.out_dir, self.columns, manifest_sha256)
        else:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            writers.rewrite_logs(self.out_dir, [], self.columns)
        self._jsonl = writers.AppendLog(self.out_dir / writers.RECORDS_JSONL)
        self._csv = writers.AppendLog(self.out_dir / writers.DIAGNOSES_CSV, newline="")
        return done

    def findings(self, scores: dict[str, np.ndarray]) -> dict:
        """``scores`` ({set: {label: similarity}}) and ``top_findings`` of one record from
        its ``{set: (n_labels,)}`` similarities. The top findings are the ``top_k`` highest
        similarities over all sets, each with its rank within its own set (ties: the label
        listed first ranks first, and comes first)."""
        values = {name: np.asarray(scores[name], dtype=np.float64) for name in self.label_sets}
        rounded = {name: dict(zip(labels, [round(v, writers.SCORE_DECIMALS)
                                           for v in values[name].tolist()]))
                   for name, labels in self.label_sets.items()}
        calls = self._calls(values) if self.call_labels else {}
        if not self.top_k:
            return {"scores": rounded, "top_findings": [], **calls}
        flat = np.concatenate([values[name] for name in self.label_sets])
        set_of, index_in_set = self._positions
        # Sorted by value (descending), then set order, then label order: deterministic.
        order = np.lexsort((index_in_set, set_of, -flat))[:self.top_k]
        names = list(self.label_sets)
        top = []
        for k in order.tolist():
            name = names[set_of[k]]
            j = int(index_in_set[k])
            v = values[name]
            rank = 1 + int(np.count_nonzero(v > v[j])) + int(np.count_nonzero(v[:j] == v[j]))
            label = self.label_sets[name][j]
            top.append({"set": name, "label": label,
                        "description": self.descriptions.get(name, {}).get(label, label),
                        "similarity": round(float(v[j]), writers.SCORE_DECIMALS), "rank": rank,
                        "set_size": len(v)})
        return {"scores": rounded, "top_findings": top, **calls}

    def _calls(self, values: dict[str, np.ndarray]) -> dict:
        """``calls`` ({label: 0/1}, each name once) and ``findings_present`` (the called ones,
        in set then label order) of one record."""
        calls, present = {}, []
        for name, j, label, threshold in self.call_labels:
            v = float(values[name][j])
            calls[label] = int(v >= threshold)
            if calls[label]:
                present.append({"set": name, "label": label,
                                "description": self.descriptions.get(name, {}).get(label, label),
                                "similarity": round(v, writers.SCORE_DECIMALS),
                                "threshold": round(threshold, writers.SCORE_DECIMALS)})
        return {"calls": calls, "findings_present": present}

    def render(self, entries: list[dict]) -> list[tuple[Path | None, str | None, str, str]]:
        """The text each entry adds to the outputs, without touching a file: ``(report path,
        report text, records.jsonl line, diagnoses.csv line)``, path and report None when the
        record failed. Pure, so worker processes can do it (see :meth:`write_rendered`)."""
        return [(writers.report_path(self.out_dir, e["record_id"]) if e["status"] == "ok" else None,
                 writers.report_text(e) if e["status"] == "ok" else None,
                 writers.jsonl_line(e),
                 writers.csv_text([writers.csv_row(e, self.columns)]))
                for e in entries]

    def write(self, entries: list[dict]) -> None:
        """Reports of the ``ok`` entries, then every entry to both logs."""
        self.write_rendered(self.render(entries))

    def write_rendered(self, rendered: list[tuple[Path | None, str | None, str, str]]) -> None:
        """Write what :meth:`render` made: the reports now (atomically), their log lines at
        the next :meth:`flush`."""
        self.add_lines([(jsonl, csv_line) for _, _, jsonl, csv_line in rendered],
                       self.write_reports(rendered))

    @staticmethod
    def write_reports(rendered: list[tuple[Path | None, str | None, str, str]]) -> list[Path]:
        """The report files of :meth:`render`'s output, each atomically, not yet flushed to
        disk; returns the folders to flush (one per file system). Worker processes call it
        for their own records, so the main process only appends the log lines."""
        return writers.atomic_write_many(
            ((path, text) for path, text, _, _ in rendered if path is not None), sync=False)

    def add_lines(self, lines: list[tuple[str, str]], folders: list[Path]) -> None:
        """Queue ``(records.jsonl line, diagnoses.csv line)`` pairs whose reports are written
        in ``folders``; they reach the logs at the next :meth:`flush`, which comes once
        ``FLUSH_EVERY_S`` has passed or ``FLUSH_EVERY_RECORDS`` wait (and at :meth:`close`)."""
        self._unsynced.update((str(f), f) for f in folders)
        self._pending += lines
        if len(self._pending) >= FLUSH_EVERY_RECORDS or \
                time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Make the reports written so far durable (one ``syncfs``), then append their lines
        to both logs, one append each with Ctrl-C and SIGTERM held off in between. A flush per batch
        made the main process wait on the disk while the workers had results ready; a crash
        loses at most the last second of log lines, whose records ``--resume`` redoes."""
        if not self._pending:
            return
        writers.sync_folders(self._unsynced.values())
        self._unsynced.clear()
        jsonl_text = "".join(jsonl for jsonl, _ in self._pending)
        csv_text = "".join(csv_line for _, csv_line in self._pending)
        with deferred_signals():
            self._jsonl.append(jsonl_text)
            self._csv.append(csv_text)
        self._pending.clear()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        try:
            if self._jsonl is not None and self._csv is not None:
                self.flush()
        finally:
            opened = self._jsonl is not None
            for log in (self._jsonl, self._csv):
                if log is not None:
                    log.close()
            self._jsonl = self._csv = None
            if opened:
                writers.write_measurements_csv(self.out_dir)


def prepare_resume(out_dir: Path, columns: list[str], manifest_sha256: str) -> set[str]:
    """Check an earlier run in ``out_dir`` can be continued; keep its ``ok`` records.

    Failed records and any partial last line are dropped (failed records are retried),
    and ``diagnoses.csv`` is rebuilt from the kept lines, so the two logs agree again.
    Returns the kept record ids. Raises ValueError, saying why, if the earlier run used
    another model bundle or other label columns.
    """
    out_dir = Path(out_dir)
    run_path = out_dir / writers.RUN_JSON
    if run_path.is_file():
        try:
            earlier = json.loads(run_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            earlier = {}
        sha = (earlier.get("bundle") or {}).get("manifest_sha256")
        if sha and sha != manifest_sha256:
            raise ValueError(f"{out_dir} was made with another model bundle: resuming would "
                             "mix two models; use --overwrite or another --out")
    csv_path = out_dir / writers.DIAGNOSES_CSV
    if csv_path.is_file():
        header = writers.read_csv_header(csv_path)
        if header and header != writers.csv_header(columns):
            raise ValueError(f"{csv_path} has other label columns (another --labels file?): "
                             "use the same options to resume, or --overwrite")
    writers.remove_temp_files(out_dir)  # left by a run killed mid-write (kill -9)
    done: set[str] = set()
    jsonl_path = out_dir / writers.RECORDS_JSONL

    def kept():
        if jsonl_path.is_file():
            for entry in writers.read_jsonl(jsonl_path):
                if entry.get("status") == "ok" and entry["record_id"] not in done:
                    done.add(entry["record_id"])
                    yield entry

    writers.rewrite_logs(out_dir, kept(), columns)
    return done


def failure_line(entry: dict) -> str:
    """``"sub/rec.hea: signal file rec.dat is truncated (...)"``: the file, then why."""
    name = os.path.basename(entry["path"])
    reason = entry["error"] or "unknown error"
    if reason.startswith(name + ": "):
        reason = reason[len(name) + 2:]
    return f"{entry['record_id']}.hea: {reason}"
