"""The run's HTML pages (ecgreport.outputs.overview), without a browser: data, size, speed,
rebuilding, record pages drawn from the records. See test_overview_browser.py for what a
person sees."""

from __future__ import annotations

import json
import re
import time

import numpy as np
from typer.testing import CliRunner

from conftest import write_record
from ecgreport.cli import app
from ecgreport.outputs import writers
from ecgreport.outputs.overview import (COLUMNS, page_href, page_path, draw_pages,
                                        overview_row, write_overview)


def entry(i: int, status: str = "ok", **more) -> dict:
    """A records.jsonl entry shaped like batch's, with a realistic amount of text."""
    e = {"record_id": f"records100/{i // 1000:05d}/{i:05d}_lr", "path": f"/data/{i:05d}_lr.hea",
         "status": status, "error": None if status == "ok" else "x.hea: signal file is truncated",
         "fs_hz": 100.0, "duration_s": 10.0, "warnings": [] if i % 7 else ["lead V3 is flat"],
         "report": None, "top_findings": [], "scores": {}, "leads_found": ["I", "II"],
         "window_s": 10.0, "window_starts_s": [0.0]}
    if status == "ok":
        e.update(report="sinus rhythm. left type. otherwise normal ecg. " + ("atrial fibrillation "
                 if i % 10 == 0 else "") + "t waves flat in v5 v6 and in the limb leads.",
                 report_window_start_s=0.0,
                 top_findings=[{"set": "superclass", "label": "NORM", "description": "normal",
                                "similarity": 0.41, "rank": 1, "set_size": 5},
                               {"set": "rhythm", "label": "SR", "description": "sinus rhythm",
                                "similarity": 0.39, "rank": 1, "set_size": 12},
                               {"set": "statement", "label": "NORM", "description": "normal",
                                "similarity": 0.38, "rank": 1, "set_size": 71}],
                 measurements={"heart_rate_bpm": 60 + i % 40, "qrs_ms": 90.0 + i % 30,
                               "qtc_bazett_ms": 400.0 + i % 50, "qrs_axis_deg": i % 90 - 30})
    e.update(more)
    return e


def blob(index_html: str) -> dict:
    m = re.search(r'<script id="ecg-data" type="application/json">(.*?)</script>', index_html, re.S)
    return json.loads(m.group(1))


def write_log(out, entries) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / writers.RECORDS_JSONL).write_text("".join(writers.jsonl_line(e) for e in entries))


def test_rows_hold_the_columns_and_empty_cells_for_absent_measurements(tmp_path):
    write_log(tmp_path, [entry(1), entry(2, "failed"), entry(3, measurements=None)])
    data = blob(write_overview(tmp_path).read_text())
    assert [c["key"] for c in data["columns"]] == [k for k, _, _ in COLUMNS]
    ok, failed, bare = data["rows"]
    assert ok[:7] == ["records100/00000/00001_lr", "ok", 100.0, 61.0, 91.0, 401.0, -29.0]
    assert ok[7] == "NORM; SR"                              # a label topping two sets once
    assert ok[8].startswith("sinus rhythm. left type.") and ok[8].endswith("…")
    assert failed[1] == "failed" and failed[3:7] == [None] * 4
    assert "truncated" in failed[9]                          # why it failed, in Warnings
    assert bare[3:7] == [None] * 4
    assert ok[-1] is None                                    # no page written: no link


def test_text_in_the_data_cannot_close_the_script(tmp_path):
    write_log(tmp_path, [entry(1, report="</script><script>alert(1)</script>")])
    page = write_overview(tmp_path).read_text()
    assert page.count("</script>") == 2                     # the data's and the code's own
    assert blob(page)["rows"][0][8].startswith("</script>")


def test_a_resumed_run_lists_each_record_once_its_last_line_winning(tmp_path):
    write_log(tmp_path, [entry(1, "failed"), entry(2), entry(1)])
    rows = blob(write_overview(tmp_path).read_text())["rows"]
    assert [(r[0][-8:], r[1]) for r in rows] == [("00002_lr", "ok"), ("00001_lr", "ok")]


def test_100000_records_are_fast_to_write_and_reasonably_small(tmp_path):
    write_log(tmp_path, (entry(i, "failed" if i % 50 == 0 else "ok") for i in range(100_000)))
    started = time.perf_counter()
    path = write_overview(tmp_path)
    seconds = time.perf_counter() - started
    size_mb = path.stat().st_size / 1e6
    rows = blob(path.read_text())["rows"]
    assert len(rows) == 100_000 and sum(r[1] == "failed" for r in rows) == 2_000
    # ~3 s and ~21 MB on the 2-core test machine (reading the 100,000-line log included).
    assert seconds < 30, seconds
    assert size_mb < 40, size_mb
    print(f"100,000 records: index.html {size_mb:.1f} MB in {seconds:.1f} s")


def test_page_paths_mirror_the_record_id_and_links_are_quoted(tmp_path):
    assert page_path(tmp_path, "a/b c#1") == tmp_path / "pages" / "a" / "b c#1.html"
    assert page_href("a/b c#1") == "pages/a/b%20c%231.html"
    assert page_path(tmp_path, "../x") == tmp_path / "pages" / "x.html"


def test_pages_are_drawn_from_the_records_themselves(tmp_path):
    data = tmp_path / "data"
    fs = 500
    signal = np.zeros((fs * 10, 12))
    signal[fs:fs + fs // 5, 1] = 1.0                         # 1 mV, 0.2 s in lead II
    from ecgreport.leads import STANDARD_LEADS

    write_record(data, "pulse", signal, list(STANDARD_LEADS), fs_hz=fs)
    out = tmp_path / "out"
    write_log(out, [entry(1, record_id="pulse", path=str(data / "pulse.hea")),
                    entry(2, "failed", record_id="gone", path=str(data / "gone.hea"))])
    assert draw_pages(out, "failed") == 1
    failed_page = page_path(out, "gone").read_text()
    assert "No picture" in failed_page and "truncated" in failed_page
    assert not page_path(out, "pulse").exists()
    assert draw_pages(out, "all") == 1                       # pages already there are kept
    page = page_path(out, "pulse").read_text()
    assert page.count('class="lead-name"') == 12 and 'href="../index.html"' in page
    assert "sinus rhythm. left type." in page and "Rate 61 bpm" in page
    rows = blob(write_overview(out).read_text())["rows"]
    assert [r[-1] for r in rows] == ["pages/pulse.html", "pages/gone.html"]


def test_overview_command_draws_chosen_records(tmp_path):
    from ecgreport.leads import STANDARD_LEADS

    write_record(tmp_path / "data", "a", np.zeros((1000, 12)), list(STANDARD_LEADS))
    out = tmp_path / "out"
    write_log(out, [entry(1, record_id="a", path=str(tmp_path / "data" / "a.hea")), entry(2)])
    result = CliRunner().invoke(app, ["overview", str(out), "--record", "a", "-q"])
    assert result.exit_code == 0, result.output
    assert page_path(out, "a").is_file() and not page_path(out, entry(2)["record_id"]).exists()
    rows = blob((out / "index.html").read_text())["rows"]
    assert [r[-1] for r in rows] == ["pages/a.html", None]
    result = CliRunner().invoke(app, ["overview", str(out), "--record", "nope"])
    assert result.exit_code == 2 and "not in" in result.stderr and "nope" in result.stderr


def test_overview_command(tmp_path):
    write_log(tmp_path, [entry(1)])
    result = CliRunner().invoke(app, ["overview", str(tmp_path), "-q"])
    assert result.exit_code == 0 and result.stdout.strip() == str(tmp_path / "index.html")
    assert (tmp_path / "index.html").is_file()
    result = CliRunner().invoke(app, ["overview", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "records.jsonl not found" in result.stderr
    result = CliRunner().invoke(app, ["overview", str(tmp_path), "--pictures", "some"])
    assert result.exit_code == 2 and "--pictures must be one of" in result.stderr
    # auto is batch's choice by run size: here it would silently draw nothing
    result = CliRunner().invoke(app, ["overview", str(tmp_path), "--pictures", "auto"])
    assert result.exit_code == 2 and "--pictures must be one of all, failed, none" in result.stderr


def test_overview_row_of_a_bare_entry_does_not_fail():
    assert overview_row({"record_id": "x", "status": "failed"})[:3] == ["x", "failed", None]


# ---------------------------------------------------------------- in `ecgreport batch`


def same_files(a, b, skip=("run.json",)) -> None:
    """Every file under ``a`` is under ``b`` with the same bytes (``skip``: names left out)."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name not in skip)
    assert files
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_batch_pictures_all_none_and_failed(tmp_path):
    from test_batch import good_folder, run, twelve_lead

    folder = good_folder(tmp_path / "in", n=3)
    twelve_lead(folder, "long", seconds=25, seed=7)           # 3 windows: the page shows one
    twelve_lead(folder, "short", seconds=2, seed=8)           # fails: shorter than 5 s
    run(folder, tmp_path / "all", pictures="all", workers=1)
    run(folder, tmp_path / "none", pictures="none", workers=1)
    run(folder, tmp_path / "failed", pictures="failed", workers=1)
    run(folder, tmp_path / "auto", workers=1)                 # the default: auto
    # Pictures change no other output.
    same_files(tmp_path / "none", tmp_path / "all", skip=("run.json", "index.html"))
    assert not (tmp_path / "none" / "pages").exists()
    for name in ("all", "none", "failed", "auto"):
        assert (tmp_path / name / "index.html").is_file()
    entries = {e["record_id"]: e for e in writers.read_jsonl(tmp_path / "all" / "records.jsonl")}
    assert sorted(p.stem for p in (tmp_path / "all" / "pages").rglob("*.html")) == \
        sorted(i.split("/")[-1] for i in entries)
    assert [p.stem for p in (tmp_path / "failed" / "pages").rglob("*.html")] == ["short"]
    # auto: a small run gets every page, as with all
    assert sorted(p.stem for p in (tmp_path / "auto" / "pages").rglob("*.html")) == \
        sorted(p.stem for p in (tmp_path / "all" / "pages").rglob("*.html"))
    run_json = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert run_json["arguments"]["pictures"] == "auto" and run_json["pictures"] == "all"
    # The short record's picture is read again from its file: 2 s of it.
    short = page_path(tmp_path / "failed", "short").read_text()
    assert "record too short" in short and "0-2 s of the record shown" in short
    long = entries["long"]
    start = long["report_window_start_s"]
    page = page_path(tmp_path / "all", "long").read_text()
    assert f"{start:g}-{start + 10:g} s of the record shown (the window the report" in page
    rows = blob((tmp_path / "all" / "index.html").read_text())["rows"]
    assert all(r[-1] for r in rows)                           # every row links to its page


def test_a_resumed_run_rebuilds_the_overview(tmp_path):
    from test_batch import good_folder, run

    folder = good_folder(tmp_path / "in", n=3)
    out = tmp_path / "out"
    run(folder, out, workers=1, pictures="all")
    log = out / "records.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:1]))                        # as if stopped after one record
    write_overview(out)
    assert len(blob((out / "index.html").read_text())["rows"]) == 1
    run(folder, out, workers=1, resume=True, pictures="all")
    rows = blob((out / "index.html").read_text())["rows"]
    assert len(rows) == 3 and all(r[1] == "ok" and r[-1] for r in rows)


def test_merging_shards_keeps_the_record_pages(tmp_path):
    from test_batch import good_folder, run

    folder = good_folder(tmp_path / "in", n=4)
    for k in (1, 2):
        run(folder, tmp_path / f"part{k}", workers=1, pictures="all", shard=(k, 2))
    writers.merge_outputs([tmp_path / "part1", tmp_path / "part2"], tmp_path / "merged")
    rows = blob(write_overview(tmp_path / "merged").read_text())["rows"]
    assert len(rows) == 4 and all(r[-1] for r in rows)


def test_auto_pictures_depend_on_the_run_size():
    from ecgreport.options import AUTO_PICTURES_MAX, BatchOptions

    auto = BatchOptions("in", "out")
    assert auto.pictures == "auto"
    assert auto.resolved(AUTO_PICTURES_MAX).pictures == "all"
    assert auto.resolved(AUTO_PICTURES_MAX + 1).pictures == "failed"
    assert BatchOptions("in", "out", pictures="none").resolved(1).pictures == "none"
