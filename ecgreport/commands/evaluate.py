"""`ecgreport evaluate`: report quality and zero-shot detection on PTB-XL, with baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecgreport.commands.train import _folds
from ecgreport.errors import UsageError


def _row(table: Table, *cells: str) -> None:
    """Cells as plain text: names from the data are never read as rich markup."""
    table.add_row(*(Text(cell) for cell in cells))


def _print_tables(res: dict) -> None:
    out = Console(highlight=False)
    for method, zs in res.get("zero_shot", {}).items():
        default = ", the bundle's default" if method == res.get("zero_shot_default") else ""
        t = Table(title=Text(f"Zero-shot detection, {method} scoring{default}; PTB-XL folds {res['folds']} (macro AUC; chance 0.5)"))
        for col in ("task", "classes", "records", "macro AUC", "95% CI"):
            t.add_column(col)
        for task, z in zs.items():
            _row(t, task, str(z["n_classes"]), str(z["n_records"]), f"{z['macro_auc']:.3f}",
                 f"{z['ci95'][0]:.3f}-{z['ci95'][1]:.3f}")
        out.print(t)
    rg = res.get("report_generation")
    if rg:
        metrics = list(next(iter(rg.values())).keys())
        t = Table(title=Text(f"Report generation ({res['n_with_reference']} records with an English reference)"))
        t.add_column("system")
        for m in metrics:
            t.add_column(m)
        for name, m in rg.items():
            _row(t, name, *(f"{m[k]:.3f}" for k in metrics))
        out.print(t)
        t = Table(title=Text("Clinical correctness: SCP statements in the report vs scp_codes"))
        for col in ("system", "micro P", "micro R", "micro F1", "macro F1"):
            t.add_column(col)
        for name, s in res["clinical_statements"].items():
            _row(t, name, *(f"{s[k]:.3f}" for k in ("micro_precision", "micro_recall", "micro_f1", "macro_f1")))
        out.print(t)
    q = Table(title=Text("Quoted from the literature (not measured here)"))
    q.add_column("measure")
    q.add_column("system")
    q.add_column("value")
    for measure, rows in res.get("quoted_literature", {}).items():
        for name, value in rows:
            _row(q, measure, name, f"{value:.3f}")
    out.print(q)


def evaluate(
    data: Path = typer.Option(
        ..., "--data", "-d", help="PTB-XL folder (PhysioNet layout, with reports_en.csv).",
        exists=True, file_okay=False, show_default=False),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="ONNX bundle folder or training checkpoint (.pt). "
        "Default: the bundled model.", show_default=False),
    folds: str = typer.Option("10", help="Folds to evaluate on (PTB-XL strat_fold), e.g. 10 or 9,10."),
    train_folds: str = typer.Option("1-8", help="Folds the baselines draw reports from."),
    limit: int = typer.Option(0, help="At most this many records per split (quick runs); 0 = all."),
    beams: int = typer.Option(1, help="Beam width for report generation (1 = greedy)."),
    bootstrap: int = typer.Option(
        1000, help="Bootstrap resamples for the AUC confidence intervals (0 = none)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    reports: bool = typer.Option(
        True, help="Also evaluate report generation (--no-reports: only the zero-shot part)."),
    device: str = typer.Option("auto", metavar="auto|cpu|cuda", help="Where the model runs."),
    json_out: Optional[Path] = typer.Option(
        None, "--json", help="Write all numbers as JSON to this file.", show_default=False),
    markdown: Optional[Path] = typer.Option(
        None, "--markdown", help="Write the tables as Markdown to this file.", show_default=False),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress display on stderr (errors still show)."),
) -> None:
    """Measure a model on PTB-XL: report metrics (BLEU, METEOR, ROUGE-L, CIDEr;
    pycocoevalcap), clinical statement F1, and zero-shot macro AUC with bootstrap
    intervals, beside the retrieval and most-frequent-report baselines, in one run.

    The tables go to stdout; progress to stderr.

    \b
    Example:
      ecgreport evaluate --data /data/ptb-xl --json results.json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ecgreport.evaluation.run import EvalOptions, evaluate as run_eval, to_markdown
    from ecgreport.onnx.runtime import default_bundle_path

    for option, path in (("--json", json_out), ("--markdown", markdown)):
        if path is not None and path.is_dir():
            raise UsageError(f"{option} {path} is a folder: name a file to write")
    console = Console(stderr=True, quiet=quiet, highlight=False)
    opts = EvalOptions(folds=_folds(folds), train_folds=_folds(train_folds), limit=limit, beams=beams,
                       bootstrap=bootstrap, seed=seed, reports=reports)
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
