"""Fuzz the record reader and `ecgreport batch` with mutated copies of the fixture records.

Headers and signal files are mutated by a seeded generator (fields dropped, duplicated,
swapped, set to junk or extremes; lines dropped or repeated; files truncated, extended,
bit-flipped, emptied or missing). What must hold for every mutant:

- reading either works (12 leads, finite mV, a window plan the model can take) or fails
  with a RecordError whose message is one of KNOWN_REASONS, never a raw Python exception
  ("list index out of range", "float division by zero", ...);
- nothing hangs (a time limit per mutant);
- through `ecgreport batch` on a folder of mutants: no traceback, every record listed
  exactly once in records.jsonl, no NaN or infinite score, every error a known reason.

Most mutants run at the reader level (thousands, fast); a few hundred go through the
batch. The seed is fixed, so a failure names a mutant that can be rebuilt.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, ecg_like, write_record
from ecgreport.errors import RecordError
from ecgreport.records import find_records, read_header, read_record
from ecgreport.signal import model_window, plan_windows

SEED = 20231
N_READER_MUTANTS = 2500
N_BATCH_MUTANTS = 300
SECONDS_PER_MUTANT = 5.0  # far above the ~5 ms a mutant takes: only a hang trips it

# Every reason a record may fail with, after the "<file>.hea: " prefix. A new reason is
# fine if a user can act on it: add it here. Python's own exception texts never match.
KNOWN_REASONS = [
    r"header file not found",
    r"cannot read header: .+",
    r"header is empty",
    r"header is not text \(.+\)",
    r"header line \d+ \(record line\): .+",
    r"header line \d+ \(signal \d+\): .+",
    r"header says \d+ signals? but has \d+ signal lines?",
    r"header gives no signal length and it cannot be inferred",
    r"not a valid WFDB header \(.+\)",
    r"multi-segment record: .+",
    r"signal file \S+ not found",
    r"signal file \S+ is truncated \(expected \d+ bytes, found \d+\)",
    r"cannot read signal file \S+: .+",
    r"signal file .+ cannot be decoded \(corrupt, or not in the format the header gives.*\)",
    r"signal is empty \(0 samples\)",
    r"none of the 12 standard leads found \(leads: .*\)",
    r"no usable leads \(all flat, all NaN or gain 0\)",
    r"record too short: \d+\.\d\d s, the minimum is \d+(\.\d+)? s",
]
_KNOWN = re.compile(r"^(?:" + "|".join(KNOWN_REASONS) + r")$")

# Values a mutated field may take: junk, extremes, and plausible-looking wrong values.
JUNK = ["", "abc", "-1", "0", "-0", "1e309", "-1e309", "1e-320", "nan", "inf", "-inf",
        "99999999999999999999", "4294967296", "2147483648", "-2147483649", "3.7", "0.0001",
        "1/0", "()", "(", "0(0)/", "/mV", "1000.0(-99999999999999)/mV", "16x0", "16+-1",
        "16x1+99999999999", "212", "8", "999", "\u00b5V", "\xff\xfe", "~", "../x", "x" * 300,
        "100/0", "100/-1", "100/nan", "1e3(0)/uV", "0(0)/mV", "12", "1000", "5000"]


@dataclass(frozen=True)
class Base:
    """A fixture record to mutate: its header text and signal file name and bytes."""

    name: str          # record name (header stem)
    header: str
    signal_name: str
    signal: bytes


def _bases(tmp_root: Path) -> list[Base]:
    """Fixture records of each kind: PTB-XL 100 Hz and 500 Hz (.dat), Challenge 2021 (.mat),
    and a format-212 record written here (the general wfdb path)."""
    headers = [FIXTURES / "ptb-xl-mini/records100/00000/00001_lr.hea",
               FIXTURES / "ptb-xl-mini/records100/00000/00022_lr.hea",
               FIXTURES / "ptb-xl-mini/records500/00000/00001_hr.hea",
               FIXTURES / "challenge-2021/HR06000.hea"]
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    headers.append(write_record(tmp_root / "base212", "r212", ecg_like(1000, 12), leads, fmt="212"))
    bases = []
    for hea in headers:
        text = hea.read_text(encoding="utf-8")
        signal_name = text.splitlines()[1].split()[0]
        bases.append(Base(hea.stem, text, signal_name, (hea.parent / signal_name).read_bytes()))
    return bases


# ---------------------------------------------------------------- mutations


def _mutate_fields(rng: random.Random, fields: list[str]) -> list[str]:
    fields = list(fields)
    op = rng.choice(["drop", "duplicate", "swap", "junk", "junk", "junk"])
    i = rng.randrange(len(fields))
    if op == "drop":
        del fields[i]
    elif op == "duplicate":
        fields.insert(i, fields[i])
    elif op == "swap" and len(fields) > 1:
        j = rng.randrange(len(fields))
        fields[i], fields[j] = fields[j], fields[i]
    else:
        fields[i] = rng.choice(JUNK)
    return fields


def mutate_header(rng: random.Random, text: str) -> str:
    """One to three edits: a field of the record line or a signal line, or whole lines."""
    lines = text.splitlines()
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not lines:
            break
        op = rng.random()
        if op < 0.3:  # the record line: name, n_sig, fs, sig_len (and base time/date)
            lines[0] = " ".join(_mutate_fields(rng, lines[0].split() or [""]))
        elif op < 0.75:  # a signal line: file, format, gain(baseline)/units, ..., name
            k = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
            lines[k] = " ".join(_mutate_fields(rng, lines[k].split() or [""]))
        elif op < 0.85:
            del lines[rng.randrange(len(lines))]
        elif op < 0.95:
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
        else:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def mutate_bytes(rng: random.Random, data: bytes) -> bytes | None:
    """Truncate, extend, bit-flip, empty, or delete (None) a file."""
    op = rng.choice(["truncate", "truncate", "extend", "flip", "flip", "empty", "delete"])
    if op == "truncate":
        return data[: rng.randrange(len(data) + 1)]
    if op == "extend":
        return data + bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 3, 1000])))
    if op == "flip":
        out = bytearray(data)
        for _ in range(rng.choice([1, 10, 1000])):
            if out:
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if op == "empty":
        return b""
    return None


def write_mutant(rng: random.Random, base: Base, folder: Path) -> Path:
    """Write one mutant of ``base`` into ``folder``; return its header path."""
    folder.mkdir(parents=True, exist_ok=True)
    header, signal = base.header, base.signal
    kind = rng.random()
    if kind < 0.6:
        header = mutate_header(rng, header)
    elif kind < 0.85:
        signal = mutate_bytes(rng, signal)
    elif kind < 0.95:
        header, signal = mutate_header(rng, header), mutate_bytes(rng, signal)
    else:
        raw = mutate_bytes(rng, header.encode())
        header = None if raw is None else raw.decode("latin-1")
    hea = folder / f"{base.name}.hea"
    if header is not None:
        hea.write_bytes(header.encode("latin-1", "replace") if rng.random() < 0.1
                        else header.encode("utf-8"))
    if signal is not None:
        (folder / base.signal_name).write_bytes(signal)
    return hea


# ---------------------------------------------------------------- the checks


def assert_known_reason(message: str) -> None:
    assert "Traceback" not in message
    name, sep, reason = message.partition(".hea: ")
    assert sep, f"the message does not start with the header's name: {message!r}"
    assert _KNOWN.match(reason), f"not a known reason: {message!r}"


def read_like_batch(hea: Path, fs_model: float = 100.0, window_s: float = 10.0) -> np.ndarray:
    """The reading and preprocessing that `batch` does for one record; the model's inputs
    ``(n_windows, 12, window_samples)``. Raises RecordError."""
    header = read_header(hea)
    try:
        plan = plan_windows(header.n_samples, header.fs_hz, window_s, 5.0, 6)
    except ValueError as err:
        raise RecordError(f"{hea.name}: {err}") from None
    out = []
    for start in plan.starts:
        record = read_record(hea, start, min(start + plan.window, header.n_samples))
        assert record.signal_mv.shape[0] == 12 and np.isfinite(record.signal_mv).all()
        out.append(model_window(record.signal_mv, record.fs_hz, fs_model, int(window_s * fs_model)))
    return np.stack(out)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return _bases(tmp_path_factory.mktemp("bases"))


def test_mutated_records_read_or_fail_with_a_known_reason(bases, tmp_path):
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "failed": 0}
    reasons: dict[str, int] = {}
    for k in range(N_READER_MUTANTS):
        base = bases[k % len(bases)]
        hea = write_mutant(rng, base, tmp_path / f"m{k}")
        started = time.perf_counter()
        try:
            x = read_like_batch(hea)
        except RecordError as err:
            assert_known_reason(str(err))
            outcomes["failed"] += 1
            kind = re.sub(r"\d+", "N", str(err).partition(".hea: ")[2])[:60]
            reasons[kind] = reasons.get(kind, 0) + 1
        else:
            assert x.ndim == 3 and x.shape[1:] == (12, 1000) and np.isfinite(x).all(), hea
            outcomes["ok"] += 1
        elapsed = time.perf_counter() - started
        assert elapsed < SECONDS_PER_MUTANT, f"mutant {k} ({hea}) took {elapsed:.1f} s"
        shutil.rmtree(tmp_path / f"m{k}")
    # The mutations must exercise both outcomes broadly, or the test proves little.
    assert outcomes["ok"] > N_READER_MUTANTS // 10 and outcomes["failed"] > N_READER_MUTANTS // 4, outcomes
    assert len(reasons) >= 15, reasons


def test_batch_on_a_folder_of_mutants(bases, tmp_path):
    """Through `ecgreport batch` with the packaged model, in one process: every mutant
    listed once, scores finite, reasons known, no traceback."""
    import subprocess
    import sys

    rng = random.Random(SEED + 1)
    folder = tmp_path / "in"
    for k in range(N_BATCH_MUTANTS):
        write_mutant(rng, bases[k % len(bases)], folder / f"m{k:03d}")
    expected = {ref.record_id for ref in find_records(folder)}
    out = tmp_path / "out"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "ecgreport", "batch", str(folder), "--out", str(out), "-j", "1",
         "--max-windows", "1"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode in (0, 3), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    entries = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    ids = [e["record_id"] for e in entries]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    n_ok = 0
    for entry in entries:
        if entry["status"] == "ok":
            n_ok += 1
            for label_set in entry["scores"].values():
                assert all(math.isfinite(v) for v in label_set.values()), entry["record_id"]
        else:
            assert_known_reason(entry["error"])
    assert 0 < n_ok < len(entries)
    assert time.perf_counter() - started < 300
