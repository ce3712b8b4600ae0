"""Output writing details that the batch tests do not see: durable batches of reports."""

from __future__ import annotations

import os

import pytest

from ecgreport.outputs import writers


def temp_files(folder) -> list[str]:
    return [name for _, _, names in os.walk(folder) for name in names if name.endswith(".tmp")]


@pytest.mark.parametrize("has_syncfs", [True, False])
def test_atomic_write_many_writes_every_file(tmp_path, monkeypatch, has_syncfs):
    synced, fsynced = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(writers.os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))
    if has_syncfs:
        real = writers._syncfs()
        assert real is not None, "syncfs is in every Linux C library since 2011"
        monkeypatch.setattr(writers, "_syncfs", lambda: lambda folder: (synced.append(folder),
                                                                        real(folder)))
    else:
        monkeypatch.setattr(writers, "_syncfs", lambda: None)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "a.txt").write_text("old")
    files = [(writers.report_path(tmp_path, rid), f"report {rid}\n")
             for rid in ["a", "sub/b", "sub/deeper/c"]]
    writers.atomic_write_many(files)
    for path, text in files:
        assert path.read_text(encoding="utf-8") == text
    assert temp_files(tmp_path) == []
    if has_syncfs:  # one flush of the file system for the whole batch, no fsync per file
        assert len(synced) == 1 and fsynced == []
    else:
        assert len(fsynced) == len(files)


def test_atomic_write_many_stops_cleanly_on_failure(tmp_path, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("b.txt"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(writers.os, "replace", replace)
    with pytest.raises(OSError, match="No space"):
        writers.atomic_write_many([(tmp_path / "a.txt", "a"), (tmp_path / "b.txt", "b"),
                                   (tmp_path / "c.txt", "c")])
    assert (tmp_path / "a.txt").read_text() == "a"
    assert not (tmp_path / "b.txt").exists() and not (tmp_path / "c.txt").exists()
    assert temp_files(tmp_path) == []


def test_atomic_write_many_with_nothing_to_write(tmp_path):
    writers.atomic_write_many([])
    assert list(tmp_path.iterdir()) == []


def _findings_by_definition(label_sets, scores, top_k):
    """Top findings as documented: all labels sorted by (-similarity, set order, label
    order); rank = place within the label's own set, ties to the label listed first."""
    rows = []
    for s, (name, labels) in enumerate(label_sets.items()):
        values = [float(v) for v in scores[name]]
        for j, label in enumerate(labels):
            rank = 1 + sum(v > values[j] for v in values) + sum(v == values[j] for v in values[:j])
            rows.append((-values[j], s, j, name, label, rank, len(labels)))
    rows.sort(key=lambda r: r[:3])
    return [(name, label, round(-neg, writers.SCORE_DECIMALS), rank, size)
            for neg, _, _, name, label, rank, size in rows[:top_k]]


@pytest.mark.parametrize("top_k", [0, 1, 5, 12])
def test_top_findings_follow_their_definition(tmp_path, top_k):
    import numpy as np

    from ecgreport.outputs.sink import BatchSink

    label_sets = {"a": ["x", "y", "z"], "b": ["p", "q"], "c": ["r", "s", "t", "u"]}
    sink = BatchSink(tmp_path, label_sets, {"a": {"x": "ex"}}, top_k)
    rng = np.random.default_rng(top_k)
    for _ in range(50):
        # few distinct values, so ties within and across sets are common
        scores = {name: rng.choice([0.1, 0.25, 0.3], size=len(labels)) for name, labels in label_sets.items()}
        got = sink.findings(scores)
        assert [(f["set"], f["label"], f["similarity"], f["rank"], f["set_size"]) for f in got["top_findings"]] \
            == _findings_by_definition(label_sets, scores, top_k)
        assert got["scores"] == {name: {label: round(float(v), writers.SCORE_DECIMALS)
                                        for label, v in zip(labels, scores[name])}
                                 for name, labels in label_sets.items()}
        for f in got["top_findings"]:
            assert f["description"] == ("ex" if (f["set"], f["label"]) == ("a", "x") else f["label"])


def test_log_lines_follow_their_reports_at_each_flush(tmp_path, monkeypatch):
    from ecgreport.outputs import sink as sink_module

    synced = []
    monkeypatch.setattr(writers, "sync_folders", lambda folders: synced.append(list(folders)))
    monkeypatch.setattr(sink_module, "FLUSH_EVERY_S", 3600.0)
    sink = sink_module.BatchSink(tmp_path, {"a": ["x"]}, {}, 1)
    sink.open(resume=False, manifest_sha256="0" * 64)
    entry = {"record_id": "r1", "path": "r1.hea", "status": "ok", "error": None, "fs_hz": 100.0,
             "duration_s": 10.0, "leads_found": ["I"], "missing_leads": [], "n_windows": 1,
             "window_s": 10.0, "window_starts_s": [0.0], "report_window_start_s": 0.0,
             "warnings": [], "report": "sinus rhythm", "scores": {"a": {"x": 0.5}},
             "top_findings": []}
    sink.write([entry])
    # The report is in place at once; its log lines wait for the flush, after the sync.
    assert writers.report_path(tmp_path, "r1").is_file()
    assert len((tmp_path / writers.RECORDS_JSONL).read_text().splitlines()) == 0
    assert synced == []
    sink.write([dict(entry, record_id="r2")])
    sink.close()  # flushes: one sync of the reports' folder, then both logs
    assert len(synced) == 1 and synced[0] == [writers.report_path(tmp_path, "r1").parent]
    assert [e["record_id"] for e in writers.read_jsonl(tmp_path / writers.RECORDS_JSONL)] == ["r1", "r2"]
    assert len((tmp_path / writers.DIAGNOSES_CSV).read_text().splitlines()) == 3  # header + 2

    # A flush is due after FLUSH_EVERY_RECORDS lines even within the interval.
    monkeypatch.setattr(sink_module, "FLUSH_EVERY_RECORDS", 1)
    sink = sink_module.BatchSink(tmp_path / "b", {"a": ["x"]}, {}, 1)
    sink.open(resume=False, manifest_sha256="0" * 64)
    sink.write([entry])
    assert len((tmp_path / "b" / writers.RECORDS_JSONL).read_text().splitlines()) == 1
    sink.close()
