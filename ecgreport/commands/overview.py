"""`ecgreport overview`: (re)build a batch run's index.html, and draw record pages on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from ecgreport.errors import UsageError


def overview(
    out: Path = typer.Argument(..., help="The output folder of `ecgreport batch` (holding "
                               "records.jsonl).", show_default=False),
    pictures: str = typer.Option(
        "none", "--pictures", help="Also write record pages (12-lead picture + report) for "
        "all records, the failed ones, or none, reading each record again from its path. "
        "Pages already there are kept."),
    record: Optional[list[str]] = typer.Option(
        None, "--record", "-r", help="Draw the page of this record (its id, as in the "
        "table; repeat for several), redrawing it if present.", show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No message on stderr."),
) -> None:
    """Write OUT/index.html: every record of a batch run in one sortable, filterable page.

    `ecgreport batch` writes it at the end of every run; run this after a run was
    interrupted, after merging shards, or to draw the pictures of a run made with
    `--pictures none`. The page's path goes to stdout.

    \b
    Examples:
      ecgreport overview results/
      ecgreport overview results/ --record records100/00000/00001_lr
      ecgreport overview results/ --pictures all      # every record's page (slow for many)
    """
    from ecgreport.outputs.overview import PICTURES, draw_pages, write_overview

    # "auto" is batch's choice by run size; here the pages are asked for explicitly.
    choices = [p for p in PICTURES if p != "auto"]
    if pictures not in choices:
        raise UsageError(f"--pictures must be one of {', '.join(choices)}, got {pictures!r}")
    try:
        drawn = draw_pages(out, pictures) if pictures != "none" else 0
        if record:
            drawn += draw_pages(out, records=list(record), missing_only=False)
        path = write_overview(out)
    except (FileNotFoundError, KeyError) as err:  # errors print and exit in ecgreport.cli
        raise UsageError(err.args[0] if isinstance(err, KeyError) else str(err)) from None
    if not quiet:
        done = f"wrote {path}" + (f" and {drawn} record page(s)" if drawn else "")
        Console(stderr=True).print(escape(done), highlight=False, soft_wrap=True)
    typer.echo(str(path))
