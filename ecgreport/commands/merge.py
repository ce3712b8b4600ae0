"""`ecgreport merge`: the output folders of `batch --shard K/N` runs into one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ecgreport.errors import ExitCode


def merge(
    dirs: list[Path] = typer.Argument(
        ..., help="Output folders of the shard runs (each made by `ecgreport batch`).",
        show_default=False),
    into: Path = typer.Option(
        ..., "--into", help="Folder for the merged outputs (must not hold batch outputs yet).",
        show_default=False),
) -> None:
    """Merge the output folders of `ecgreport batch --shard K/N` runs into one.

    records.jsonl and diagnoses.csv list the records in record order (as one run over
    the whole folder would), reports/ holds every report, and run.json sums the counts
    and keeps each run's own run.json.

    \b
    Example:
      ecgreport batch ecgs/ -o part1/ --shard 1/2     # on two machines, then
      ecgreport batch ecgs/ -o part2/ --shard 2/2
      ecgreport merge part1 part2 --into results/

    \b
    Exit codes: 0 merged, 1 a file could not be read or written, 2 the folders cannot
    be merged (not batch outputs, other label columns, a record in two runs, or --into
    already holds outputs).
    """
    code, message = run_merge(dirs, into)
    console = Console(stderr=True)
    if code:
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    else:
        console.print(message, highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(int(code))


def run_merge(dirs: list[Path], into: Path) -> tuple[ExitCode, str]:
    """Merge; return the exit code and the message for stderr (what was merged, or why
    not). Shared by `ecgreport merge` and `python -m ecgreport.outputs.merge`."""
    from ecgreport.outputs.writers import merge_outputs

    try:
        merged = merge_outputs(dirs, into)
    except ValueError as err:
        return ExitCode.USAGE, str(err)
    except OSError as err:
        return ExitCode.FATAL, f"cannot merge: {err}"
    counts = merged["counts"]
    return ExitCode.OK, (f"merged {len(dirs)} runs into {into}: {counts.get('ok', 0)} ok, "
                         f"{counts.get('failed', 0)} failed")
