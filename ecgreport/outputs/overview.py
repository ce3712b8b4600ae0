"""The run's pages: ``OUT/index.html`` (every record in one table) and ``OUT/pages/<id>.html``
(one record: its 12-lead picture and full report).

Both are self-contained: CSS and JavaScript inline, no network (they must open from a USB
stick on a hospital PC). ``index.html`` holds the table's rows as one JSON blob, about 200
bytes a record (~20 MB for 100,000), and its script draws 100 rows at a time, so a large
run is one page of DOM, not a 100,000-row table. Sorting, the text and status filters and
the page number live in the address (``index.html#q=fibrillation&status=ok``), so the
browser's back button returns to the same view.

``index.html`` is derived from ``records.jsonl`` alone (the last line of a record wins), so
it can be rebuilt at any time, e.g. after an interrupted and resumed run:
``ecgreport overview OUT``. A record page is written when its record is processed
(``ecgreport batch --pictures``), or later, on demand, by ``ecgreport overview OUT
--record ID`` or ``--pictures all``, which read the record again from the path in its
entry.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ecgreport import DISCLAIMER
from ecgreport.options import PICTURES
from ecgreport.outputs import writers
from ecgreport.outputs.picture import STRIP_S, header_from_entry, render_svg

logger = logging.getLogger(__name__)

INDEX_HTML = writers.INDEX_HTML
PAGES_DIR = writers.PAGES_DIR
REPORT_WORDS = 12

# (key, heading, type): the overview's columns, in order.
COLUMNS = (("record_id", "Record", "text"), ("status", "Status", "text"),
           ("fs_hz", "Rate (Hz)", "num"), ("heart_rate_bpm", "HR (bpm)", "num"),
           ("qrs_ms", "QRS (ms)", "num"), ("qtc_bazett_ms", "QTc Bazett (ms)", "num"),
           ("qrs_axis_deg", "QRS axis (°)", "num"), ("findings", "Findings", "text"),
           ("report", "Report (first words)", "text"), ("warnings", "Warnings", "text"))


@functools.lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files("ecgreport.outputs").joinpath("assets", name).read_text("utf-8")


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def page_parts(record_id: str) -> list[str]:
    """The path parts of a record's page below ``pages/`` (as :func:`writers.report_path`)."""
    parts = [p for p in record_id.split("/") if p not in ("", ".", "..")] or ["_"]
    return [*parts[:-1], parts[-1] + ".html"]


def page_path(out_dir: Path, record_id: str) -> Path:
    """``out_dir/pages/<record_id>.html``."""
    return Path(out_dir, PAGES_DIR, *page_parts(record_id))


def page_href(record_id: str) -> str:
    """The page's address relative to ``index.html`` (each part URL-quoted)."""
    return "/".join([PAGES_DIR] + [quote(p) for p in page_parts(record_id)])


def wants_page(entry: dict, pictures: str) -> bool:
    """Whether ``--pictures`` (all, failed or none) asks for this record's page."""
    if pictures not in PICTURES:
        raise ValueError(f"--pictures must be one of {', '.join(PICTURES)}, got {pictures!r}")
    return pictures == "all" or (pictures == "failed" and entry.get("status") != "ok")


def measurements_of(entry: dict) -> dict:
    """An entry's measurements: its ``measurements`` dict if it has one, else the
    measurement keys found at its top level."""
    found = entry.get("measurements")
    if isinstance(found, dict):
        return found
    keys = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms",
            "qtc_fridericia_ms", "p_axis_deg", "qrs_axis_deg", "t_axis_deg")
    return {k: entry[k] for k in keys if entry.get(k) is not None}


# ---------------------------------------------------------------- record page


def record_page(entry: dict, svg: str | None) -> str:
    """The HTML page of one record: header, the picture (inline SVG) when given, the full
    report text (or why the record failed), and a link back to the overview."""
    record_id = entry.get("record_id", "")
    up = "../" * len(page_parts(record_id))
    ok = entry.get("status") == "ok"
    text = writers.report_text(entry) if ok else (
        f"ecgreport: this record failed\n\n{DISCLAIMER}\n\nRecord: {record_id}\n"
        f"File:   {entry.get('path', '')}\n\nWhy: {entry.get('error') or 'unknown error'}\n")
    picture = (f'<div class="picture">{svg}</div>' if svg else
               '<p class="note">No picture: the signal could not be read.</p>')
    download = ('<a id="svg-download" href="#" download="%s.svg">Download the picture (SVG)</a>'
                % _esc(record_id.replace("/", "_"))) if svg else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(record_id)}: ecgreport</title><style>{_asset('overview.css')}</style>"
            f"</head><body>\n"
            f'<nav class="nav"><a href="{up}{INDEX_HTML}">&larr; All records</a> · {download}</nav>\n'
            f"<h1>{_esc(record_id)}</h1>\n"
            f'<p class="meta">{_esc(entry.get("status", ""))} · {_esc(DISCLAIMER)}</p>\n'
            f"{picture}\n<h2>Report</h2>\n"
            f'<pre class="report">{_esc(text)}</pre>\n'
            + (_DOWNLOAD_JS if svg else "") + "</body></html>\n")


# The SVG is inline (one file per record); this offers it as a file without a second one.
_DOWNLOAD_JS = """<script>
document.getElementById("svg-download").addEventListener("click", function (e) {
  var svg = document.querySelector(".picture svg");
  this.href = URL.createObjectURL(new Blob([svg.outerHTML], {type: "image/svg+xml"}));
});
</script>
"""


def record_path(entry: dict, root: Path | str | None) -> Path | None:
    """Where a record's header is: ``absolute_path`` when the run stored it, else ``path``
    (relative to the run's input folder ``root`` since outputs name records by their path
    within it)."""
    path = entry.get("absolute_path") or entry.get("path")
    if not path:
        return None
    path = Path(path)
    return path if path.is_absolute() or root is None else Path(root) / path


def run_root(out_dir: Path) -> Path | None:
    """The input folder of the run in ``out_dir`` (run.json's ``arguments.folder``; a
    relative one is taken from the working directory, as it was given), or None."""
    try:
        run = json.loads((Path(out_dir) / writers.RUN_JSON).read_text(encoding="utf-8"))
        folder = run["arguments"]["folder"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    folder = Path(folder).resolve()
    return folder if folder.is_dir() else folder.parent


def native_window(entry: dict, root: Path | str | None = None
                  ) -> tuple[np.ndarray, float, np.ndarray, list[str]] | None:
    """Read the 10 s an entry's picture shows from the record itself (``entry["path"]``):
    the window the report was written from, else the start. Returns ``(signal_mv (12,
    n), fs_hz, lead_mask (12,), derived leads)``, or None if the record cannot be read."""
    from ecgreport.errors import RecordError
    from ecgreport.records import read_header, read_record

    path = record_path(entry, root)
    if path is None:
        return None
    try:
        header = read_header(path)
        start = int(round(float(entry.get("report_window_start_s") or 0.0) * header.fs_hz))
        start = min(max(start, 0), max(header.n_samples - 1, 0))
        stop = min(header.n_samples, start + int(round(STRIP_S * header.fs_hz)))
        record = read_record(path, start, stop)
    except (RecordError, OSError, ValueError) as err:
        logger.debug("no picture for %s: %s", path, err)
        return None
    return (record.signal_mv, record.fs_hz, record.lead_mask,
            list(getattr(record, "derived_leads", None) or []))


def picture_of(entry: dict, signal_mv: np.ndarray, fs_hz: float, lead_mask: np.ndarray,
               derived: list[str] = ()) -> str:
    """The SVG of a record from its native window ``signal_mv`` (12, n) in standard order."""
    from ecgreport.leads import STANDARD_LEADS

    missing = [lead for lead, ok in zip(STANDARD_LEADS, lead_mask) if not ok]
    return render_svg(signal_mv, fs_hz, STANDARD_LEADS, header_from_entry(entry),
                      measurements_of(entry), missing_leads=missing,
                      derived_leads=list(derived) or entry.get("derived_leads") or [])


def page_file(out_dir: Path, entry: dict, window=None, root: Path | str | None = None
              ) -> tuple[Path, str]:
    """``(path, html)`` of a record's page; ``window`` as :func:`native_window` returns it
    (read from the record, under the input folder ``root``, when None)."""
    window = window if window is not None else native_window(entry, root)
    svg = picture_of(entry, *window) if window is not None else None
    return page_path(out_dir, entry["record_id"]), record_page(entry, svg)


# ---------------------------------------------------------------- the overview


def overview_row(entry: dict) -> list:
    """One table row of the overview, in :data:`COLUMNS` order."""
    m = measurements_of(entry)
    qtc = m.get("qtc_bazett_ms")
    words = (entry.get("report") or "").split()
    report = " ".join(words[:REPORT_WORDS]) + (" …" if len(words) > REPORT_WORDS else "")
    # The findings called present where the bundle has thresholds, else the top scores; a
    # label can be in two sets (NORM in superclass and in subclass): listed once.
    present = entry.get("findings_present")
    if present is not None:
        findings = "; ".join(dict.fromkeys(f["label"] for f in present))
    else:
        labels = dict.fromkeys(f["label"] for f in entry.get("top_findings") or [])
        findings = "; ".join(list(labels)[:3])
    # The report's disagreements with the measurements first: a reader scanning the table
    # should not take "atrial fibrillation" at face value when the rhythm measured regular.
    warnings = "; ".join([*(entry.get("measurement_flags") or []), *(entry.get("warnings") or [])])
    if entry.get("status") != "ok" and entry.get("error"):
        warnings = "; ".join(filter(None, [entry["error"], warnings]))

    def num(v):
        return None if v is None or not np.isfinite(float(v)) else round(float(v), 1)

    return [entry.get("record_id", ""), entry.get("status", ""), num(entry.get("fs_hz")),
            num(m.get("heart_rate_bpm")), num(m.get("qrs_ms")), num(qtc),
            num(m.get("qrs_axis_deg")), findings, report, warnings]


def _pages_present(out_dir: Path) -> set[str]:
    """Record pages under ``out_dir/records`` as paths relative to it (one walk)."""
    root = Path(out_dir, PAGES_DIR)
    found = set()
    for folder, _, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        for name in files:
            if name.endswith(".html"):
                found.add(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return found


def overview_html(rows: list[list], run: dict) -> str:
    """The page for ``rows`` (each :func:`overview_row` plus its page href or None)."""
    columns = [{"key": k, "label": label, "type": t} for k, label, t in COLUMNS]
    # "<" escaped so no text in the data can close the <script> element.
    blob = json.dumps({"columns": columns, "rows": rows}, ensure_ascii=False,
                      separators=(",", ":")).replace("<", "\\u003c")
    counts = run.get("counts") or {}
    n_ok = sum(1 for r in rows if r[1] == "ok")
    facts = [f"{len(rows):,} records", f"{n_ok:,} ok", f"{len(rows) - n_ok:,} failed"]
    if run.get("status"):
        facts.append(f"run {run['status']}")
    if run.get("finished_at") or run.get("started_at"):
        facts.append(str(run.get("finished_at") or run.get("started_at")))
    if counts.get("not_processed"):
        facts.append(f"{counts['not_processed']:,} not processed")
    heads = "".join(f'<th data-col="{i}" aria-sort="none" scope="col"><button type="button">'
                    f"{_esc(label)}</button></th>" for i, (_, label, _) in enumerate(COLUMNS))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ecgreport: {len(rows):,} records</title><style>{_asset('overview.css')}</style>"
        "</head><body>\n<h1>ecgreport: overview of the run</h1>\n"
        f'<p class="meta">{_esc(" · ".join(facts))}. {_esc(DISCLAIMER)} Scores and findings are '
        "cosine similarities, not probabilities.</p>\n"
        '<div class="controls" role="search">'
        '<label for="q">Filter</label><input id="q" type="search" placeholder="e.g. fibrillation '
        '(press / to jump here)" autocomplete="off">'
        '<label for="status">Status</label><select id="status"><option value="">all</option>'
        '<option value="ok">ok</option><option value="failed">failed</option></select>'
        '<button id="first" type="button">First</button><button id="prev" type="button">'
        '&larr; Previous</button><button id="next" type="button">Next &rarr;</button>'
        '<button id="last" type="button">Last</button>'
        '<span id="info" aria-live="polite"></span></div>\n'
        f'<table><thead><tr>{heads}</tr></thead><tbody id="rows"></tbody></table>\n'
        '<p class="note noprint">Keys: / filter · Tab or ↑ ↓ move between records · Enter opens '
        "one · Page Up / Page Down turn pages. Click a heading to sort (again to reverse).</p>\n"
        f'<script id="ecg-data" type="application/json">{blob}</script>\n'
        f"<script>{_asset('overview.js')}</script>\n</body></html>\n")


def write_overview(out_dir: Path) -> Path:
    """(Re)build ``out_dir/index.html`` from ``records.jsonl`` (atomically); returns its path.
    Rows link to record pages that exist. Raises FileNotFoundError without records.jsonl."""
    out_dir = Path(out_dir)
    jsonl = out_dir / writers.RECORDS_JSONL
    if not jsonl.is_file():
        raise FileNotFoundError(f"{jsonl} not found: not the output folder of ecgreport batch")
    pages = _pages_present(out_dir)
    latest: dict[str, list] = {}   # rows, not entries: an entry's scores are ~100x larger
    for entry in writers.read_jsonl(jsonl):
        record_id = entry["record_id"]
        latest.pop(record_id, None)  # a later line replaces it, in its place
        rel = "/".join(page_parts(record_id))
        latest[record_id] = overview_row(entry) + [page_href(record_id) if rel in pages else None]
    rows = list(latest.values())
    run: dict = {}
    if (out_dir / writers.RUN_JSON).is_file():
        try:
            run = json.loads((out_dir / writers.RUN_JSON).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            run = {}
    path = out_dir / INDEX_HTML
    writers.atomic_write_text(path, overview_html(rows, run))
    return path


def draw_pages(out_dir: Path, pictures: str = "all", records: list[str] | None = None,
               missing_only: bool = True) -> int:
    """Write the record pages ``pictures`` asks for, or those of ``records`` (record ids,
    whatever their status), reading each record again from its path; pages already there
    are kept unless ``missing_only`` is False. Returns how many were written. Raises
    KeyError naming the ids of ``records`` that ``records.jsonl`` does not list."""
    out_dir = Path(out_dir)
    present = _pages_present(out_dir) if missing_only else set()
    chosen = None if records is None else set(records)
    seen: set[str] = set()
    files, n = [], 0
    root = run_root(out_dir)
    for entry in writers.read_jsonl(out_dir / writers.RECORDS_JSONL):
        record_id = entry["record_id"]
        wanted = record_id in chosen if chosen is not None else wants_page(entry, pictures)
        seen.add(record_id)
        if wanted and "/".join(page_parts(record_id)) not in present:
            files.append(page_file(out_dir, entry, root=root))
        if len(files) >= 256:  # a few MB of pages in memory at most
            n += len(files)
            writers.atomic_write_many(files)
            files = []
    writers.atomic_write_many(files)
    if chosen is not None and chosen - seen:
        raise KeyError(f"not in {out_dir / writers.RECORDS_JSONL}: {', '.join(sorted(chosen - seen))}")
    return n + len(files)
