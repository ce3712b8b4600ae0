"""The `ecgreport` command line. Commands are thin: parse, call the library, map errors."""

from __future__ import annotations

import logging
from typing import Optional

import typer

from ecgreport import DISCLAIMER, __version__

app = typer.Typer(
    name="ecgreport",
    help=(
        "Diagnosis reports and zero-shot disease scores for 12-lead ECGs (WFDB records), "
        "from an ECG encoder aligned with a language model by Optimal Transport.\n\n"
        f"{DISCLAIMER}\n\n"
        "Start with:  ecgreport batch FOLDER --out results/"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecgreport {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debugging detail to stderr."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    # Imported here so that `ecgreport --help` stays fast and torch-free.
    from ecgreport.commands import batch, evaluate, export, info, merge, train

    app.command("batch")(batch.batch)
    app.command("info")(info.info)
    app.command("merge")(merge.merge)
    app.command("train")(train.train)
    app.command("export-onnx")(export.export_onnx)
    app.command("evaluate")(evaluate.evaluate)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
