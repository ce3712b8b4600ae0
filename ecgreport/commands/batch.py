"""`ecgreport batch`: parse the options, call :func:`ecgreport.batch.run_batch`, map errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from ecgreport.errors import EcgReportError, ExitCode, exit_code_for
from ecgreport.options import BatchOptions
from ecgreport.signal.checks import MIN_LEADS

logger = logging.getLogger(__name__)


def batch(
    folder: Path = typer.Argument(
        ..., metavar="FOLDER", help="Folder of WFDB records (searched recursively), or one .hea header.",
        show_default=False),
    out: Path = typer.Option(
        Path("ecgreport-out"), "--out", "-o", help="Folder for reports/, diagnoses.csv, "
        "records.jsonl and run.json."),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="Model bundle folder (manifest.json + ONNX files). "
        "Default: the model packaged with ecgreport.", show_default=False),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu or cuda."),
    batch_size: int = typer.Option(64, "--batch-size", help="ECG windows per model call."),
    workers: int = typer.Option(
        0, "--workers", "-j", help="Processes running the model on the CPU, one thread each "
        "(0: one per core, at most 8; 1: a single process, as on a GPU)."),
    max_windows: int = typer.Option(
        BatchOptions.max_windows, "--max-windows",
        help="Most windows analysed per record; longer records are "
        "sampled at this many evenly spread places."),
    min_seconds: float = typer.Option(
        5.0, "--min-seconds", help="Records shorter than this are rejected (failed)."),
    min_leads: int = typer.Option(
        MIN_LEADS, "--min-leads", help="Records with fewer usable standard leads fail, naming the "
        "leads found (limb leads derived from two of I, II, III count; the default comes "
        "from the lead-removal table in docs/signal-checks.md)."),
    beams: int = typer.Option(1, "--beams", help="Beam width for the report (1 = greedy)."),
    top_k: int = typer.Option(5, "--top-k", help="Zero-shot findings listed per report."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", help="CSV of extra labels 'label,description' scored as set "
        "'custom' (needs the train extra: pip install \"ecgreport[train]\"). Format: "
        "header 'label,description[,more prompts]', one row per label.", show_default=False),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run in --out: skip records already "
        "done, retry failed ones."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace earlier outputs in --out."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first bad record."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N", help="Process only shard K of N, K from 1 (record i "
        "of the sorted list goes to shard i % N + 1). For a 0-based SLURM array index: "
        "--shard $((SLURM_ARRAY_TASK_ID+1))/N.", show_default=False),
    pictures: str = typer.Option(
        "auto", "--pictures", metavar="auto|all|failed|none", help="Records that get a page "
        "with their 12-lead picture (SVG, 25 mm/s, 10 mm/mV) and report in pages/: auto is "
        "all for runs of up to 1,000 records and failed for larger ones (a page costs about "
        "7% of a run: docs/benchmarks-pictures.md). index.html, the table of all records, "
        "is written in every case; `ecgreport overview OUT --record ID` draws a page later."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, per-record "
                               "messages or summary on stderr (errors still show)."),
    include_header_comments: bool = typer.Option(
        False, "--include-header-comments", help="Copy header comments (age, sex, free text: "
        "may identify patients) into the outputs."),
    absolute_paths: bool = typer.Option(
        False, "--absolute-paths", help="Add each record's absolute path to the outputs "
        "(by default only the path within FOLDER: folder names may identify patients)."),
) -> None:
    """Write a report and zero-shot diagnosis scores for every ECG in FOLDER.

    Every WFDB record (.hea header, signals in .dat, FLAC or Challenge .mat) is read
    as the 12 standard leads in mV, resampled to the model's rate and analysed in
    windows. Into --out go:

    \b
      reports/<record>.txt  disclaimer, measurements, report (checked against
                            them), top findings, input warnings
      diagnoses.csv         a row per record, a column per label (cosine)
      measurements.csv      rate, PR, QRS, QT/QTc, axes per record (at the end)
      records.jsonl         everything per record, and why a record failed
      run.json              version, model checksum, arguments, counts, timing
      index.html            every record in one sortable, filterable page
      pages/<record>.html   12-lead picture and report (--pictures)

    Scores are cosine similarities between the ECG and each label's description, not
    probabilities: compare them within a label set, across records.

    \b
    Examples:
      ecgreport batch ecgs/ --out results/
      ecgreport batch ecgs/ -o results/ --resume          # continue after Ctrl-C
      ecgreport batch ecgs/ -o part1/ --shard 1/2         # on two machines, then
      ecgreport merge part1 part2 --into results/

    \b
    Exit codes: 0 all records done, 1 fatal error, 2 usage error, 3 some
    records failed, 4 no records found, 5 model bundle missing or invalid,
    130 interrupted (Ctrl-C), 143 stopped by SIGTERM; after either, --resume
    continues.
    """
    from ecgreport.batch import parse_shard, run_batch

    console = Console(stderr=True)

    def fail(message: str, code: ExitCode) -> typer.Exit:
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False,
                      soft_wrap=True)
        return typer.Exit(int(code))

    try:
        options = BatchOptions(
            folder, out, model, device=device, batch_size=batch_size, max_windows=max_windows,
            min_seconds=min_seconds, min_leads=min_leads, resume=resume, overwrite=overwrite,
            fail_fast=fail_fast,
            labels=labels, top_k=top_k, beams=beams,
            shard=parse_shard(shard) if shard is not None else None,
            include_header_comments=include_header_comments, absolute_paths=absolute_paths,
            workers=workers, quiet=quiet, pictures=pictures)
        summary = run_batch(options, console=console)
    except KeyboardInterrupt as err:
        raise fail(*_interrupted(err, out)) from None
    except EcgReportError as err:  # each class carries its exit code (ecgreport.errors)
        raise fail(str(err), exit_code_for(err)) from None
    except Exception as err:  # a bug or an environment problem: one line, traceback with -v
        logger.debug("batch failed", exc_info=True)
        raise fail(f"{type(err).__name__}: {err} (run `ecgreport -v batch ...` for details)",
                   ExitCode.FATAL) from None

    if summary.n_records == 0:
        where = f"{folder}" + (f" for shard {shard}" if shard else "")
        raise fail(f"no WFDB records (.hea headers) found in {where}", ExitCode.NO_RECORDS)
    if not quiet:
        resumed = f" ({summary.n_resumed} from the earlier run)" if summary.n_resumed else ""
        stopped = (f", {summary.n_not_processed} not processed (--fail-fast)"
                   if summary.n_not_processed else "")
        colour = "yellow" if summary.n_failed else "green"
        console.print(
            f"[{colour}]{summary.n_ok} ok{escape(resumed)}, {summary.n_failed} failed"
            f"{stopped}[/{colour}] in {summary.wall_s:.1f} s "
            f"({summary.records_per_s:.1f} ECG/s); outputs in {escape(str(out))}",
            highlight=False, soft_wrap=True)
    raise typer.Exit(int(summary.exit_code))


def _interrupted(err: KeyboardInterrupt, out: Path) -> tuple[str, int]:
    """The message and exit code (130 Ctrl-C, 143 SIGTERM) of an interrupted run; "saved"
    only where this run saved something."""
    from ecgreport.lifecycle import Interrupted, ignore_signals

    if isinstance(err, Interrupted) and err.by_signal:
        ignore_signals()  # the process ends now: a further Ctrl-C would only print a traceback
    code = err.exit_code if isinstance(err, Interrupted) else int(ExitCode.INTERRUPTED)
    stopped = "stopped by SIGTERM" if code == ExitCode.TERMINATED else "interrupted"
    summary = getattr(err, "summary", None)
    if summary is None or summary.n_processed == 0:
        return (f"{stopped} before any record was finished: nothing new is saved"
                + (f" (run.json in {out} says so)" if summary is not None else ""), code)
    return (f"{stopped}: {summary.n_processed} records finished and saved in {out}, "
            f"{summary.n_not_processed} left; run the same command with --resume to "
            "finish", code)
