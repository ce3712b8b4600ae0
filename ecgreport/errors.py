"""Exit codes and the exceptions the CLI maps onto them (one table, documented in README)."""

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
    """Base class: a problem worth a one-line message rather than a traceback."""


class RecordError(EcgReportError):
    """One record cannot be used. The message names the file and the problem."""


class BundleError(EcgReportError):
    """The model bundle is missing, incomplete, or fails its checksums."""


class DataError(EcgReportError):
    """A training/evaluation dataset folder is missing or not in PTB-XL's layout."""
