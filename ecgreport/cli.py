"""The `ecgreport` command line. Commands are thin: parse, call the library, map errors.

Errors are turned into messages and exit codes in one place, :func:`handle_errors`, with the
codes from :mod:`ecgreport.errors`: the same problem exits with the same code in every
command. Help is click's plain formatter (wrapped at the terminal's width, 80 at most):
rich's boxes left 12 characters for text at 80 columns.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

from ecgreport import DISCLAIMER, __version__
from ecgreport.errors import EcgReportError, ExitCode, exit_code_for

logger = logging.getLogger(__name__)

# Click's own exits and usage errors, which click reports itself (typer >= 0.29 carries its own
# copy of click, older versions use click's classes): the handler lets them through.
_CLICK_EXITS: tuple = (typer.Exit, typer.Abort) + tuple(
    filter(None, [getattr(typer, "TyperException", None)]))
try:
    import click

    _CLICK_EXITS += (click.exceptions.Exit, click.exceptions.Abort, click.ClickException)
except ImportError:  # pragma: no cover - typer without click
    pass

app = typer.Typer(
    name="ecgreport",
    help=(
        "Diagnosis reports and zero-shot disease scores for 12-lead ECGs (WFDB records), "
        "from an ECG encoder aligned with a language model by Optimal Transport.\n\n"
        f"{DISCLAIMER}\n\n"
        "Start with:  ecgreport batch FOLDER --out results/\n\n"
        "Exit codes (every command): 0 done, 1 fatal error, 2 usage error, 3 some records "
        "failed, 4 no records found, 5 model bundle missing or invalid, 130 interrupted (Ctrl-C), "
        "143 stopped by SIGTERM."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def print_error(message: str, prefix: str = "error: ", style: str = "red") -> None:
    """One message to stderr, never read as rich markup (``[train]`` stays ``[train]``)."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text.assemble((prefix, style), message))


def handle_errors(command: Callable) -> Callable:
    """Wrap a command so that every exception ends in one message and its exit code.

    EcgReportError subclasses carry their code; Ctrl-C is 130; anything else is a bug or
    an environment problem: one line with the exception's type (exit 1), the traceback
    with ``ecgreport -v``. Click's own exits and usage errors pass through unchanged.
    """

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except _CLICK_EXITS:
            raise
        except KeyboardInterrupt as err:
            print_error("interrupted", prefix="", style="yellow")
            raise typer.Exit(int(exit_code_for(err))) from None
        except EcgReportError as err:
            print_error(str(err))
            raise typer.Exit(int(exit_code_for(err))) from None
        except Exception as err:  # noqa: BLE001 - the one place that turns a bug into a line
            logger.debug("%s failed", command.__name__, exc_info=True)
            name = command.__name__.replace("_", "-")
            print_error(f"{type(err).__name__}: {err} (run `ecgreport -v {name} ...` for the "
                        "traceback)")
            raise typer.Exit(int(exit_code_for(err))) from None

    return run


def _no_hyphen_breaks() -> None:
    """click wraps help with textwrap, which by default breaks "PTB-XL" or "zero-shot" at
    the hyphen and leaves half a word at the end of a line. typer formats with its own
    copy of click (typer._click) where it has one, else with click."""
    for name in ("typer._click._textwrap", "click._textwrap"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        base = module.TextWrapper
        if getattr(base, "_ecgreport_patched", False):
            continue

        class NoHyphenBreaks(base):
            _ecgreport_patched = True

            def __init__(self, *args, **kwargs):
                kwargs.setdefault("break_on_hyphens", False)
                super().__init__(*args, **kwargs)

        module.TextWrapper = NoHyphenBreaks  # wrap_text looks the class up here at each call


_no_hyphen_breaks()


class _Command(typer.core.TyperCommand):
    """Usage lines as people write them: ``ecgreport batch [OPTIONS] FOLDER``, not typer's
    ``{folder}`` for a required argument."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [re.sub(r"^\{(.+)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecgreport {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Log debugging detail (and tracebacks) to stderr."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


# One line each in `ecgreport --help` (click would cut the docstrings' first sentences).
SHORT_HELP = {
    "batch": "Reports and zero-shot scores for every ECG in a folder.",
    "info": "A model bundle's input spec and label sets.",
    "train": "Train the model on ECGs and their free-text reports.",
    "export-onnx": "Export a training checkpoint to an ONNX bundle.",
    "evaluate": "Report quality and zero-shot AUC on a dataset, with baselines.",
    "overview": "Rebuild a run's index.html; draw record pages on demand.",
    "merge": "Merge the output folders of a sharded run into one.",
}


def _register() -> None:
    # Imported here so that `ecgreport --help` stays fast and torch-free.
    from ecgreport.commands import batch, dataset, evaluate, export, info, merge, overview, train

    for name, command in (("batch", batch.batch), ("info", info.info), ("merge", merge.merge),
                          ("overview", overview.overview), ("train", train.train),
                          ("export-onnx", export.export_onnx), ("evaluate", evaluate.evaluate)):
        app.command(name, short_help=SHORT_HELP[name], cls=_Command)(handle_errors(command))
    app.add_typer(dataset.app, name="dataset", short_help="Build and check a dataset of your own ECGs.",
                  help="Build and check a training dataset from your own ECGs and reports.")


_register()

if __name__ == "__main__":  # pragma: no cover
    app(prog_name="ecgreport")
