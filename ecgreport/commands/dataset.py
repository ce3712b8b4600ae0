"""`ecgreport dataset build|check|truth`: make a training dataset from a folder of WFDB records."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ecgreport.errors import DataError, ExitCode

app = typer.Typer(
    help="Make and check a dataset of ECGs and reports for `ecgreport train` (format: `ecgreport train --help`).",
    no_args_is_help=True,
)


def _fail(err: Exception, code: int = ExitCode.FATAL) -> None:
    Console(stderr=True).print(str(err), style="red", markup=False)
    raise typer.Exit(code)


@app.command("build")
def build(
    folder: Path = typer.Argument(..., help="Folder of WFDB records (searched as `ecgreport batch` does).", exists=True),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write: database.csv, reports.csv, dataset.json."),
    reports: Optional[Path] = typer.Option(None, "--reports", help="CSV with columns record_id,report[,patient_id]; default: each header's comment lines.", exists=True, dir_okay=False),
    report_field: Optional[str] = typer.Option(None, help="Take the report from this header field only ('#<NAME>: text' or '#NAME: text', and the plain comment lines after it)."),
    patient_field: Optional[str] = typer.Option(None, help="Header field holding a patient id: a patient's records stay in one split."),
    split: str = typer.Option("80/10/10", help="Shares of train/val/test, cut by patient (or by record when no patient ids)."),
    seed: int = typer.Option(0, help="Seed of the split's shuffle: the same seed, the same split."),
    name: Optional[str] = typer.Option(None, help="The data's name in model cards and reports; default: the folder's name."),
    citation: str = typer.Option("", help="How to cite the data (shown beside its name)."),
    force: bool = typer.Option(False, "--force", help="Replace a dataset already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Write a dataset (database.csv, reports.csv) from a folder of WFDB records.

    One row per record: its header's path, sampling rate and split, and its report. Reports come from --reports, or from the header comments: every comment line that is not a '<field>: value' line, joined with spaces (LUDB: the diagnoses).

    Example:

        ecgreport dataset build ludb/data --out ludb-ds --split 60/20/20
    """
    from ecgreport.dataset.build import build_dataset

    console = Console(stderr=True, quiet=quiet)
    try:
        res = build_dataset(folder, out, reports_csv=reports, report_field=report_field, patient_field=patient_field,
                            split=split, seed=seed, name=name, citation=citation, force=force)
    except DataError as err:
        _fail(err)
    console.print(f"wrote {res.out}: {res.n_records} records, {res.n_with_report} with a report; split "
                  + ", ".join(f"{k} {v}" for k, v in res.split_counts.items()), markup=False)
    for line in res.skipped[:5]:
        console.print(f"skipped {line}", style="yellow", markup=False)
    if len(res.skipped) > 5:
        console.print(f"... and {len(res.skipped) - 5} more skipped", style="yellow", markup=False)
    if res.n_with_report == 0:
        _fail(DataError(f"{res.out}: no record has a report (give --reports CSV or --report-field)"))


@app.command("check")
def check(
    data: Path = typer.Argument(..., help="Dataset folder."),
    headers: int = typer.Option(20, help="Also read this many records' headers (0: only check that files exist)."),
) -> None:
    """Say what a dataset holds and what is missing, in one screen.

    Exit 0 when `ecgreport train --data DATA` can run, 1 otherwise.

    Example:

        ecgreport dataset check ludb-ds
    """
    from ecgreport.dataset.format import check_dataset

    out = Console()
    facts, problems = check_dataset(data, sample_files=headers)
    for line in facts:
        out.print(line, markup=False, soft_wrap=True)
    for line in problems:
        out.print(f"problem   {line}", style="red", markup=False, soft_wrap=True)
    if problems:
        raise typer.Exit(ExitCode.FATAL)
    out.print("ok        ready for: ecgreport train --data " + str(data), markup=False, soft_wrap=True)


@app.command("truth")
def truth(
    data: Path = typer.Argument(..., help="Dataset folder."),
    labels: str = typer.Option(..., "--labels", help="NAME=FILE.csv: a label set (label,description[,more prompts])."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Truth table to write; default: DATA/truth/NAME.csv."),
) -> None:
    """Write a truth table for `evaluate --truth` from the dataset's own reports.

    A record has a label when its report contains the label's description or one of its prompts (whole words, any case). For data whose reports are diagnoses (LUDB).

    Example:

        ecgreport dataset truth ludb-ds --labels ludb=ludb-labels.csv
    """
    from ecgreport.commands.export import parse_label_option, read_labels
    from ecgreport.dataset.build import truth_from_reports

    try:
        name, path = parse_label_option(labels)
        written = truth_from_reports(data, name, read_labels(path), out)
    except (DataError, ValueError) as err:
        _fail(err, ExitCode.USAGE if isinstance(err, ValueError) else ExitCode.FATAL)
    Console(stderr=True).print(f"wrote {written}", markup=False)
