"""`ecgreport evaluate`: report quality and zero-shot detection on a dataset (PTB-XL or your own), with baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecgreport.errors import UsageError


def _row(table: Table, *cells: str) -> None:
    """Cells as plain text: names from the data are never read as rich markup."""
    table.add_row(*(Text(cell) for cell in cells))


def _where(res: dict) -> str:
    if res.get("is_ptbxl", True):
        return f"PTB-XL folds {res['folds']}"
    return f"{res.get('data_name', 'dataset')} split {', '.join(res['folds'])}"


def _print_tables(res: dict) -> None:
    out = Console(highlight=False)
    for method, zs in res.get("zero_shot", {}).items():
        default = ", the bundle's default" if method == res.get("zero_shot_default") else ""
        t = Table(title=Text(f"Zero-shot detection, {method} scoring{default}; {_where(res)} (macro AUC; chance 0.5)"))
        for col in ("task", "classes", "records", "macro AUC", "95% CI"):
            t.add_column(col)
        for task, z in zs.items():
            _row(t, task, str(z["n_classes"]), str(z["n_records"]), f"{z['macro_auc']:.3f}",
                 f"{z['ci95'][0]:.3f}-{z['ci95'][1]:.3f}")
        out.print(t)
    rg = res.get("report_generation")
    if rg:
        _metrics_table(out, rg, f"Report generation ({res['n_with_reference']} records with a reference "
                       "report; references and outputs in standard terms, ecgreport.reports.normalise_report)")
        if res.get("report_generation_raw"):
            _metrics_table(out, res["report_generation_raw"], "Report generation against the RAW references "
                           "(as the dataset wrote them, lower-cased; outputs as generated)")
    tables = [("Clinical correctness: SCP statements in the report vs scp_codes", res.get("clinical_statements"))]
    tables += [(f"Labels of set {name} written in the report vs the truth table", systems)
               for name, systems in res.get("report_labels", {}).items()]
    for title, systems in tables:
        if not systems:
            continue
        t = Table(title=Text(title))
        for col in ("system", "micro P", "micro R", "micro F1", "macro F1"):
            t.add_column(col)
        for name, s in systems.items():
            _row(t, name, *(f"{s[k]:.3f}" for k in ("micro_precision", "micro_recall", "micro_f1", "macro_f1")))
        out.print(t)
    _print_calls(res, out)
    if not res.get("quoted_literature"):
        return
    q = Table(title=Text("Quoted from the literature (not measured here)"))
    q.add_column("measure")
    q.add_column("system")
    q.add_column("value")
    for measure, rows in res.get("quoted_literature", {}).items():
        for name, value in rows:
            _row(q, measure, name, f"{value:.3f}")
    out.print(q)


def _truth_option(texts: list[str]) -> dict:
    """['name=file.csv', ...] -> {name: Path}; a file alone is named by its stem."""
    out = {}
    for text in texts:
        name, sep, path = text.partition("=")
        name, path = (name.strip(), Path(path)) if sep else (Path(text).stem, Path(text))
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="--truth")
        out[name] = path
    return out


def _metrics_table(out: Console, systems: dict, title: str) -> None:
    """One row per system, one column per report metric (BLEU-1 ... CIDEr)."""
    metrics = list(next(iter(systems.values())).keys())
    t = Table(title=Text(title))
    t.add_column("system")
    for m in metrics:
        t.add_column(m)
    for name, m in systems.items():
        _row(t, name, *(f"{m[k]:.3f}" for k in metrics))
    out.print(t)


def _print_calls(res: dict, out: Console) -> None:
    """Findings called present (bundle thresholds) vs scp_codes, beside the generated report."""
    calls = res.get("calls")
    if not calls:
        return
    fmt = lambda v: "n/a" if v != v else f"{v:.3f}"  # noqa: E731  (NaN: no support)
    for task, c in calls.items():
        rep = c.get("generated_report")
        t = Table(title=Text(f"{task}: findings called present (similarity >= the bundle's fold-9 threshold) "
                             f"vs scp_codes, PTB-XL folds {res['folds']}, {c['n_records']} records; 'report': the "
                             "labels the extractor reads in the generated report"))
        for col in ("label", "support", "called", "P", "R", "F1", "report P", "report R", "report F1"):
            t.add_column(col)
        for label, v in c["calls"]["per_label"].items():
            r = rep["per_label"][label] if rep else None
            _row(t, label, str(v["support"]), str(v["called"]), fmt(v["precision"]), fmt(v["recall"]),
                      fmt(v["f1"]), *((fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"])) if r else ("",) * 3))
        m = c["calls"]
        t.add_section()
        _row(t, f"macro ({m['n_labels']})", "", "", fmt(m["macro_precision"]), fmt(m["macro_recall"]),
                  fmt(m["macro_f1"]), *((fmt(rep["macro_precision"]), fmt(rep["macro_recall"]), fmt(rep["macro_f1"]))
                                        if rep else ("",) * 3))
        out.print(t)


def evaluate(
    data: Path = typer.Option(
        ..., "--data", "-d", help="Dataset folder (format: ecgreport train --help), e.g. "
        "PTB-XL's.", exists=True, file_okay=False, show_default=False),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="ONNX bundle folder or training checkpoint (.pt). "
        "Default: the bundled model.", show_default=False),
    split: str = typer.Option(
        "", "--split", "--folds", show_default=False, help="Values of the split column to "
        "measure on, e.g. test or 9,10. Default: test (PTB-XL: fold 10)."),
    train_split: str = typer.Option(
        "", "--train-split", "--train-folds", show_default=False, help="Split the retrieval "
        "baselines draw reports from. Default: train (PTB-XL: folds 1-8)."),
    truth: list[str] = typer.Option(
        [], "--truth", metavar="NAME=FILE.csv", show_default=False, help="Truth table: "
        "record_id and one 0/1 column per label of the bundle's label set NAME (a FILE "
        "alone: NAME is its stem); repeat for several. Default: DATA/truth/*.csv."),
    limit: int = typer.Option(0, help="At most this many records per split (quick runs); 0 = all."),
    beams: int = typer.Option(1, help="Beam width for report generation (1 = greedy)."),
    bootstrap: int = typer.Option(
        1000, help="Bootstrap resamples for the AUC confidence intervals (0 = none)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    reports: bool = typer.Option(
        True, help="Also evaluate report generation (turn off for the zero-shot part alone)."),
    device: str = typer.Option("auto", metavar="auto|cpu|cuda", help="Where the model runs."),
    json_out: Optional[Path] = typer.Option(
        None, "--json", help="Write all numbers as JSON to this file.", show_default=False),
    markdown: Optional[Path] = typer.Option(
        None, "--markdown", help="Write the tables as Markdown to this file.", show_default=False),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress display on stderr (errors still show)."),
) -> None:
    """Measure a model on a dataset: report metrics against its reports (BLEU, METEOR,
    ROUGE-L, CIDEr; pycocoevalcap) beside two baselines (retrieval and the most
    frequent report); zero-shot macro AUC with bootstrap intervals, and F1 of the labels written
    in the reports, for every label set with a truth table (--truth); on PTB-XL also its
    four benchmark tasks and SCP statement F1, all in one run.

    The tables go to stdout; progress to stderr.

    \b
    Examples:
      ecgreport evaluate --data /data/ptb-xl --json results.json
      ecgreport evaluate --data ludb-ds --model ludb-bundle \\
          --truth ludb=ludb-ds/truth/ludb.csv
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ecgreport.evaluation.run import EvalOptions, evaluate as run_eval, to_markdown
    from ecgreport.onnx.runtime import default_bundle_path

    for option, path in (("--json", json_out), ("--markdown", markdown)):
        if path is not None and path.is_dir():
            raise UsageError(f"{option} {path} is a folder: name a file to write")
    console = Console(stderr=True, quiet=quiet, highlight=False)
    opts = EvalOptions(split=tuple(split.split(",")) if split else (),
                       train_split=tuple(train_split.split(",")) if train_split else (),
                       truth=_truth_option(truth), limit=limit, beams=beams, bootstrap=bootstrap,
                       seed=seed, reports=reports)
    model = model or default_bundle_path()
    progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                        transient=True, disable=quiet)
    with progress:
        res = run_eval(model, data, opts, device=device, progress=progress)
    _print_tables(res)
    if json_out:
        json_out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    if markdown:
        markdown.write_text(to_markdown(res))
    console.print(f"evaluated {res['n_records']} records in {res['seconds']:.0f} s", markup=False)
