"""The options of one `ecgreport batch` run: one frozen object, checked once.

:class:`BatchOptions` is built by the command line (or a script), checked when it is
made, handed whole to :func:`ecgreport.batch.run_batch` and to every worker process,
and written into ``run.json`` (:meth:`BatchOptions.to_json`), so a result can be traced
to the exact settings. A new option is one field here, with its check in
:meth:`BatchOptions.__post_init__`.

>>> BatchOptions("ecgs", "results", shard=(1, 2)).to_json()["shard"]
'1/2'
>>> BatchOptions("ecgs", "results", batch_size=0)
Traceback (most recent call last):
...
ecgreport.errors.UsageError: --batch-size must be at least 1, got 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ecgreport.errors import UsageError
from ecgreport.signal.checks import MIN_LEADS

DEVICES = ("auto", "cpu", "cuda")
PICTURES = ("auto", "all", "failed", "none")
# --pictures auto: a page for every record in runs of at most this many records (drawing
# costs ~7% of a run: seconds for a folder a person reads record by record), only for the
# failed ones in larger runs, where the overview and `ecgreport overview --record` serve.
AUTO_PICTURES_MAX = 1000


@dataclass(frozen=True)
class BatchOptions:
    """Everything a batch run is asked to do.

    ``folder``: WFDB records (searched recursively) or one ``.hea``; ``out_dir``: where the
    outputs go; ``model``: bundle folder, None for the packaged one; ``batch_size``: ECG
    windows per model call (a record is never split); ``max_windows``: windows analysed
    per record, spread evenly; ``min_seconds``: shorter records fail; ``labels``: CSV of
    extra labels scored as set ``custom``; ``top_k``: findings listed per record;
    ``beams``: beam width (1 = greedy); ``max_tokens``: report length limit, None for the
    bundle's own; ``shard``: ``(k, n)`` keeps record ``i`` of the sorted list when
    ``i % n == k - 1``; ``workers``: processes running the model on the CPU (0: one per
    core; 1: all in this process); ``read_workers``: threads reading ahead when the model
    runs in this process (0: read in the calling thread); ``quiet``: no progress or
    per-record messages; ``absolute_paths``: each record's absolute path in the outputs
    besides the path relative to ``folder`` (folder names can identify patients);
    ``min_leads``: records with fewer usable standard leads (derived limb leads count)
    fail, naming the leads found; ``pictures``: which records get a page with their
    12-lead picture (``all``, ``failed``, ``none``, or ``auto``: all for runs of at most
    :data:`AUTO_PICTURES_MAX` records, see :meth:`resolved`; ``index.html`` is written
    whatever it says).
    """

    folder: Path
    out_dir: Path
    model: Path | None = None
    device: str = "auto"
    batch_size: int = 64
    max_windows: int = 6
    min_seconds: float = 5.0
    resume: bool = False
    overwrite: bool = False
    fail_fast: bool = False
    labels: Path | None = None
    top_k: int = 5
    beams: int = 1
    max_tokens: int | None = None
    shard: tuple[int, int] | None = None
    include_header_comments: bool = False
    absolute_paths: bool = False
    workers: int = 0
    read_workers: int = 2
    quiet: bool = False
    min_leads: int = MIN_LEADS
    pictures: str = "auto"

    def __post_init__(self) -> None:
        # Paths as Path whatever was given (frozen: set through object.__setattr__).
        for name in ("folder", "out_dir", "model", "labels"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.device not in DEVICES:
            raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for flag, value, least in [
                ("--batch-size", self.batch_size, 1), ("--max-windows", self.max_windows, 1),
                ("--top-k", self.top_k, 0), ("--beams", self.beams, 1),
                ("--workers", self.workers, 0), ("--read-workers", self.read_workers, 0),
                ("--max-tokens", 1 if self.max_tokens is None else self.max_tokens, 1)]:
            if value < least:
                raise UsageError(f"{flag} must be at least {least}, got {value}")
        if not 1 <= self.min_leads <= 12:
            raise UsageError(f"--min-leads must be between 1 and 12, got {self.min_leads}")
        if not self.min_seconds >= 0:
            raise UsageError(f"--min-seconds must be >= 0, got {self.min_seconds}")
        if self.pictures not in PICTURES:
            raise UsageError(f"--pictures must be one of {', '.join(PICTURES)}, got {self.pictures!r}")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other: choose one")
        if self.shard is not None:
            k, n = self.shard
            if not 1 <= k <= n:
                raise UsageError(f"shard K/N needs 1 <= K <= N, got {k}/{n}")

    def resolved(self, n_records: int) -> "BatchOptions":
        """These options for a run of ``n_records`` records: ``pictures="auto"`` becomes
        ``all`` (at most :data:`AUTO_PICTURES_MAX` records) or ``failed``."""
        if self.pictures != "auto":
            return self
        return dataclasses.replace(
            self, pictures="all" if n_records <= AUTO_PICTURES_MAX else "failed")

    def to_json(self) -> dict:
        """The options as ``run.json``'s ``arguments``: paths as text, ``shard`` as ``"K/N"``."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif f.name == "shard" and value is not None:
                value = f"{value[0]}/{value[1]}"
            out[f.name] = value
        return out


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; raises UsageError unless ``1 <= K <= N``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like K/N (e.g. 1/4), got {text!r}") from None
    if k == 0 and n > 0:  # a 0-based array index passed as is
        raise UsageError(f"--shard K/N counts K from 1, got {text!r}: for a 0-based index "
                         "(SLURM_ARRAY_TASK_ID) pass $((INDEX+1))/N")
    if not 1 <= k <= n:
        raise UsageError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n
