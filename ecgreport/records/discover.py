"""Find the WFDB records under a folder.

A record is a ``.hea`` header. The rules, in the order they apply:

* The folder is walked recursively, following symbolic links; a directory already seen
  (same device and inode) is not entered again, so a link loop cannot hang the walk and
  a directory linked twice is read once.
* A directory holding a ``RECORDS`` file (PhysioNet's list of record names, one per line,
  relative to that directory, subdirectories allowed) takes its records from that list
  instead of from the headers lying in it; listed records without a header are skipped
  with a logged warning. Its subdirectories are still walked.
* A multi-segment record is one record: its master header is returned, never its
  segment headers nor its layout header (any ``*_layout.hea``).
* The same header file reached twice (RECORDS entry and walk, or two links) is returned
  once. The result is sorted by ``record_id``.

File names that are not valid UTF-8 do not stop discovery: they are decoded with
``os.fsdecode`` (surrogate escapes), and reading such a record later either works or
raises a RecordError naming the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_HEADER = ".hea"
_LAYOUT = "_layout.hea"


@dataclass(frozen=True)
class RecordRef:
    """A record found on disk.

    ``record_id``: the header's path relative to the scanned root, posix, without
    extension (``"records100/00000/00001_lr"``). ``header_path``: absolute ``.hea`` path.
    """

    record_id: str
    header_path: Path


def find_records(root: Path) -> list[RecordRef]:
    """All records under ``root`` (a folder, or a single ``.hea`` file), sorted by id.

    Raises FileNotFoundError if ``root`` does not exist.

    >>> [r.record_id for r in find_records(Path("ptb-xl-mini"))][:1]  # doctest: +SKIP
    ['records100/00000/00001_lr']
    """
    root_str = os.path.abspath(os.fsdecode(os.fspath(root)))
    if os.path.isfile(root_str):
        if not root_str.endswith(_HEADER):
            raise FileNotFoundError(f"{printable(root_str)} is not a .hea header")
        return [RecordRef(os.path.basename(root_str)[: -len(_HEADER)], Path(root_str))]
    if not os.path.isdir(root_str):
        raise FileNotFoundError(f"{printable(root_str)}: no such file or directory")

    candidates: list[tuple[str, str]] = []  # (record_id, absolute header path)
    for dirpath, headers in _walk_headers(root_str):
        rel_dir = os.path.relpath(dirpath, root_str)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for rel_name in headers:
            candidates.append((prefix + rel_name, os.path.join(dirpath, rel_name + _HEADER)))

    segments = _segment_headers(path for _, path in candidates)
    refs: dict[str, RecordRef] = {}
    seen_files: set[tuple[int, int]] = set()
    for record_id, path in sorted(candidates):
        if path.endswith(_LAYOUT) or record_id in refs:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_files or key in segments:
            continue
        seen_files.add(key)
        refs[record_id] = RecordRef(record_id, Path(path))
    logger.debug("found %d records under %s", len(refs), printable(root_str))
    return list(refs.values())


def _walk_headers(root: str):
    """Yield (directory, record names relative to it) for every directory under root."""
    visited: set[tuple[int, int]] = set()

    def on_error(err: OSError) -> None:
        logger.warning("cannot list %s: %s", printable(err.filename or ""), err.strerror)

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:
            dirnames[:] = []  # a link loop, or a directory already reached another way
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames.sort()  # deterministic: which of two links to one directory wins
        if "RECORDS" in filenames:
            yield dirpath, _listed_records(dirpath)
        else:
            yield dirpath, sorted(f[: -len(_HEADER)] for f in filenames if f.endswith(_HEADER))


def _listed_records(dirpath: str) -> list[str]:
    """Names listed in ``dirpath/RECORDS`` whose header exists (others: a warning)."""
    names = []
    try:
        with open(os.path.join(dirpath, "RECORDS"), "rb") as f:
            lines = os.fsdecode(f.read()).splitlines()
    except OSError as err:
        logger.warning("cannot read %s/RECORDS: %s", printable(dirpath), err.strerror)
        return names
    for line in lines:
        entry = line.strip().replace("\\", "/")
        if not entry or entry.startswith("#") or entry.endswith("/"):
            continue  # a listed directory is walked anyway
        if entry.endswith(_HEADER):
            entry = entry[: -len(_HEADER)]
        entry = os.path.normpath(entry).replace(os.sep, "/")
        if entry.startswith("../") or entry == ".." or os.path.isabs(entry):
            logger.warning("%s/RECORDS: skipping %s, outside the folder", printable(dirpath),
                           printable(entry))
            continue
        if not os.path.isfile(os.path.join(dirpath, entry + _HEADER)):
            logger.warning("%s/RECORDS lists %s but %s.hea does not exist: skipped",
                           printable(dirpath), printable(entry), printable(entry))
            continue
        names.append(entry)
    return names


def _segment_headers(header_paths) -> set[tuple[int, int]]:
    """(device, inode) of every segment header named by a multi-segment master header."""
    segments: set[tuple[int, int]] = set()
    for path in header_paths:
        for seg_path in _segments_of(path):
            try:
                st = os.stat(seg_path)
            except OSError:
                continue
            segments.add((st.st_dev, st.st_ino))
    return segments


def _segments_of(path: str) -> list[str]:
    """Segment header paths named in a header, [] for a single-segment or unreadable one."""
    try:
        with open(path, "rb") as f:
            text = os.fsdecode(f.read(1 << 20))
    except OSError:
        return []
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines or "/" not in lines[0].split(maxsplit=1)[0]:
        return []  # "name/n_seg" marks a multi-segment master
    directory = os.path.dirname(path)
    names = [ln.split()[0] for ln in lines[1:]]
    return [os.path.join(directory, n + _HEADER) for n in names if n and not n.startswith("~")]


def printable(text: str) -> str:
    """A file name as text even if it is not valid UTF-8 (``\\xe9`` for a stray byte).

    >>> printable(os.fsdecode(b"caf\\xe9"))
    'caf\\\\xe9'
    """
    return os.fsencode(text).decode("utf-8", "backslashreplace")
