"""Fast path for the common WFDB layout: one format-16 signal file per record.

PTB-XL (``.dat``) and the PhysioNet Challenge 2021 (``.mat``, format ``16x1+24``) both
store every lead interleaved as little-endian int16 in a single file. For such records a
tiny header parser and one ``np.fromfile`` call replace ``wfdb.rdrecord``, which spends
most of its time in generic header machinery (about 10x slower on 12 x 1000 records).

The physical conversion repeats wfdb's arithmetic exactly (float64, subtract the
baseline, divide by the gain, NaN where the sample is -32768), so the result is
bit-identical to ``wfdb.rdrecord(physical=True).p_signal``; ``tests/test_records.py``
checks this on every fixture record.

Anything unusual (multi-segment, other formats, skew, several signal files, more than
one sample per frame, a missing signal length, an abbreviated signal line) makes
:func:`parse_header` return None, and :mod:`ecgreport.records.read` falls back to wfdb.
Lead mapping, units and quality checks are not done here: both paths hand a
:class:`RawSignal` to the same code in ``read.py``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ecgreport.errors import RecordError

# Format 16's sample value that WFDB reserves for "no data" (read as NaN).
_FMT16_INVALID = -32768
_BYTES_PER_SAMPLE = 2

# "16", "16x1", "16+24", "16x1+24": format 16, one sample per frame, optional byte offset.
_RX_FMT16 = re.compile(r"16(?:x1)?(?:\+(\d+))?")
# "1000.0(0)/mV", "200/uV", "1000(-5)", "1e3(0)/mV": gain, optional (baseline), optional /units.
_RX_GAIN = re.compile(r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\((-?\d+)\))?(?:/(\S+))?")


@dataclass(frozen=True)
class ParsedHeader:
    """A single-segment header that qualifies for the fast path.

    ``adc_gain`` holds the header's own gains, so a gain of 0 stays 0 here (wfdb
    silently replaces it by 200); ``units`` are the header's spelling, e.g. ``"uV"``.
    """

    record_name: str
    fs_hz: float
    sig_len: int
    file_name: str
    byte_offset: int
    adc_gain: tuple[float, ...]
    baseline: tuple[int, ...]
    units: tuple[str, ...]
    sig_name: tuple[str, ...]

    @property
    def n_sig(self) -> int:
        return len(self.sig_name)


@dataclass
class RawSignal:
    """Physical samples of one record before lead mapping.

    ``p_signal`` has wfdb's layout, shape ``(n_samples, n_sig)`` float64 in the header's
    units, NaN where the file says "no data". ``zero_gain`` lists channels whose header
    gain is 0 (uncalibrated).
    """

    fs_hz: float
    p_signal: np.ndarray
    sig_name: list[str]
    units: list[str]
    zero_gain: frozenset[int]


def decode_header(data: bytes) -> str:
    """Header bytes to text: UTF-8 where valid (``µV``), else Latin-1, which never fails."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header_lines(text: str) -> list[str]:
    """Non-comment, non-empty lines, stripped (as wfdb's ``parse_header_content``)."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def parse_header(text: str) -> ParsedHeader | None:
    """Parse header text, or return None when the record needs the general wfdb reader.

    >>> h = parse_header("r 1 100 1000\\nr.dat 16 1000.0(0)/mV 16 0 -119 1508 0 I\\n")
    >>> h.fs_hz, h.sig_len, h.adc_gain, h.sig_name
    (100.0, 1000, (1000.0,), ('I',))
    """
    lines = header_lines(text)
    if len(lines) < 2:
        return None
    record = lines[0].split()
    # A record line with "name/n_seg" is a multi-segment master; without fs or sig_len
    # wfdb applies defaults / infers the length from the file size: leave those to it.
    if len(record) < 4 or "/" in record[0]:
        return None
    try:
        n_sig = int(record[1])
        fs_hz = float(record[2].split("/", 1)[0])
        sig_len = int(record[3])
    except ValueError:
        return None
    if n_sig != len(lines) - 1 or n_sig == 0 or fs_hz <= 0 or sig_len < 0:
        return None

    file_names, offsets, gains, baselines, units, names = set(), set(), [], [], [], []
    for line in lines[1:]:
        # All nine fields present: the description is the rest of the line.
        fields = line.split(maxsplit=8)
        if len(fields) != 9:
            return None
        fmt = _RX_FMT16.fullmatch(fields[1])
        gain = parse_gain_spec(fields[2])
        if fmt is None or gain is None:
            return None
        try:
            adc_zero = int(fields[4])
        except ValueError:
            return None
        file_names.add(fields[0])
        offsets.add(int(fmt.group(1) or 0))
        gains.append(gain[0])
        # WFDB: a missing baseline defaults to the ADC zero.
        baselines.append(gain[1] if gain[1] is not None else adc_zero)
        units.append(gain[2])
        names.append(fields[8])
    if len(file_names) != 1 or len(offsets) != 1:
        return None
    (file_name,) = file_names
    if file_name.startswith("~") or "/" in file_name or "\\" in file_name:
        return None
    return ParsedHeader(
        record_name=record[0],
        fs_hz=fs_hz,
        sig_len=sig_len,
        file_name=file_name,
        byte_offset=offsets.pop(),
        adc_gain=tuple(gains),
        baseline=tuple(baselines),
        units=tuple(units),
        sig_name=tuple(names),
    )


def parse_gain_spec(spec: str) -> tuple[float, int | None, str] | None:
    """``"1000.0(0)/mV"`` -> ``(1000.0, 0, "mV")``; baseline None and units "mV" if absent."""
    match = _RX_GAIN.fullmatch(spec)
    if match is None:
        return None
    baseline = int(match.group(2)) if match.group(2) is not None else None
    return float(match.group(1)), baseline, match.group(3) or "mV"


def read_header_file(header_path: str) -> tuple[str, ParsedHeader | None]:
    """Read and parse a header file: its text and the fast-path header (or None)."""
    with open(header_path, "rb") as f:
        text = decode_header(f.read())
    return text, parse_header(text)


def read_raw(
    header_path: str, header: ParsedHeader, sampfrom: int, sampto: int, display_name: str
) -> RawSignal:
    """Read samples ``[sampfrom, sampto)`` of a fast-path record (bounds already checked).

    Reads only those frames from disk, so a long Holter can be read window by window.
    Raises RecordError (naming ``display_name``) if the signal file is missing or shorter
    than the header says.
    """
    n_sig = header.n_sig
    dat_path = os.path.join(os.path.dirname(header_path), header.file_name)
    expected = header.byte_offset + header.sig_len * n_sig * _BYTES_PER_SAMPLE
    try:
        with open(dat_path, "rb") as f:
            found = os.fstat(f.fileno()).st_size
            if found < expected:
                raise RecordError(
                    f"{display_name}: signal file {header.file_name} is truncated "
                    f"(expected {expected} bytes, found {found})"
                )
            f.seek(header.byte_offset + sampfrom * n_sig * _BYTES_PER_SAMPLE)
            digital = np.fromfile(f, dtype="<i2", count=(sampto - sampfrom) * n_sig)
    except OSError as err:
        raise RecordError(
            f"{display_name}: cannot read signal file {header.file_name}: {err.strerror or err}"
        ) from err
    digital = digital.reshape(sampto - sampfrom, n_sig)

    # wfdb's dac(): float64, subtract baseline, divide by gain, NaN for the invalid value.
    # Same operations in the same order, so the result is bit-identical.
    p_signal = digital.astype(np.float64)
    np.subtract(p_signal, np.asarray(header.baseline, dtype=np.float64), out=p_signal)
    gain = np.asarray(header.adc_gain, dtype=np.float64)
    zero_gain = frozenset(int(c) for c in np.flatnonzero(gain == 0))
    if zero_gain:
        gain = np.where(gain == 0, 200.0, gain)  # as wfdb; these leads are dropped later
    np.divide(p_signal, gain, out=p_signal)
    invalid = digital == _FMT16_INVALID
    if invalid.any():
        p_signal[invalid] = np.nan
    return RawSignal(
        fs_hz=header.fs_hz,
        p_signal=p_signal,
        sig_name=list(header.sig_name),
        units=list(header.units),
        zero_gain=zero_gain,
    )
