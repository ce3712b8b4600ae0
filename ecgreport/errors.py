"""Exit codes and the exceptions the CLI maps onto them: one table, documented in the README.

Each exception class carries its exit code, so the same problem exits with the same code in
every command; :func:`exit_code_for` is the one place that maps any exception to a code,
and the CLI's single handler (``ecgreport.cli``) is the one place that prints and exits.

>>> exit_code_for(UsageError("--out names a file"))
<ExitCode.USAGE: 2>
>>> exit_code_for(ValueError("a bug"))
<ExitCode.FATAL: 1>
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FATAL = 1
    USAGE = 2
    SOME_RECORDS_FAILED = 3
    NO_RECORDS = 4
    BAD_BUNDLE = 5
    INTERRUPTED = 130   # Ctrl-C (SIGINT)
    TERMINATED = 143    # SIGTERM (kill PID, timeout, a scheduler)


class EcgReportError(Exception):
    """Base class: a problem worth a one-line message rather than a traceback (exit 1)."""

    exit_code = ExitCode.FATAL


class UsageError(EcgReportError, ValueError):
    """The arguments cannot work as given (exit 2); the message says what to change.

    Also a ValueError, so library callers that catch ValueError for a bad argument keep
    working."""

    exit_code = ExitCode.USAGE


class LabelsFileError(UsageError):
    """A ``--labels`` CSV is not in the expected form; the message names the file and line."""


class RecordError(EcgReportError):
    """One record cannot be used. The message names the file and the problem.

    In a batch it fails that record only; where it ends a command (one record asked for),
    the exit code says that records failed (3)."""

    exit_code = ExitCode.SOME_RECORDS_FAILED


class BundleError(EcgReportError):
    """The model bundle is missing, incomplete, or fails its checksums (exit 5)."""

    exit_code = ExitCode.BAD_BUNDLE


class DataError(EcgReportError):
    """A training/evaluation dataset folder is missing or not in PTB-XL's layout (exit 1)."""


class MissingExtraError(EcgReportError):
    """An optional dependency is not installed; the message gives the pip command (exit 1)."""

    @classmethod
    def train(cls, what: str, err: BaseException | None = None) -> "MissingExtraError":
        """``what`` needs the `train` extra (torch, transformers, ...)."""
        detail = f" ({err})" if err is not None else ""
        return cls(f'{what} needs the train extra: pip install "ecgreport[train]"{detail}')


def check_output_folder(path, option: str = "--out") -> None:
    """Raise UsageError if ``path`` exists and is not a folder (outputs go into a folder)."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder: name a new or existing "
                         "folder for the outputs")


def exit_code_for(err: BaseException) -> ExitCode:
    """The exit code for any exception: its class's code, 130 for Ctrl-C (143 for an
    interruption that says it came from SIGTERM, ``ecgreport.lifecycle.Interrupted``), else
    1 (fatal)."""
    if isinstance(err, EcgReportError):
        return ExitCode(err.exit_code)
    if isinstance(err, KeyboardInterrupt):
        return ExitCode(getattr(err, "exit_code", ExitCode.INTERRUPTED))
    return ExitCode.FATAL
