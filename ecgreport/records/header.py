"""Check a WFDB header against the format before anything reads the record.

wfdb's parser trusts its input: a mutated header could make it fail with Python's own
messages ("list index out of range", "'>' not supported between instances of 'int' and
'NoneType'"), or hang while allocating two billion signals. :func:`check_header` reads
every field of the record line and the signal (or segment) lines by the WFDB header
specification (https://physionet.org/physiotools/wag/header-5.htm) and raises a
RecordError naming the line, the field and what is wrong with it, e.g.
``00001_lr.hea: header line 1 (record line): sampling frequency 'abc' is not a number``.

It checks the syntax and the ranges the readers rely on, not the meaning: a header that
passes may still describe a signal file that does not match it, which the readers report.

>>> check_header("r 1 100 1000\\nr.dat 16 1000(0)/mV 16 0 0 0 0 I\\n", "r.hea")
>>> check_header("r 1 0 1000\\nr.dat 16 1000(0)/mV 16 0 0 0 0 I\\n", "r.hea")
Traceback (most recent call last):
...
ecgreport.errors.RecordError: r.hea: header line 1 (record line): sampling frequency 0 Hz is not positive
"""

from __future__ import annotations

import datetime
import math
import re

from ecgreport.errors import RecordError

# The formats wfdb reads (https://physionet.org/physiotools/wag/signal-5.htm).
SIGNAL_FORMATS = ("8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524")
MAX_FS_HZ = 1e5
"""Highest sampling frequency accepted. ECGs are sampled at 100 Hz to a few kHz; above
100 kHz the resampling ratio to the model's 100 Hz falls below 1/1000, the finest step
:func:`ecgreport.signal.resample` takes."""
MIN_FS_HZ = 1.0
MAX_SAMPLES = 2**40
"""Longest signal accepted (samples): a year of 12 leads at 10 kHz is ~2^38."""
MAX_INT = 2**31 - 1
"""WFDB stores baselines, ADC zeros and the like as 32-bit integers."""
MAX_SIGNALS = 10_000
MAX_SAMPS_PER_FRAME = 10_000

# The grammar of wfdb's own header regexes (wfdb.io.header), so that what passes here is
# read the same way by the fast path and by wfdb: no '+' signs, a lower-case exponent in
# gains only, none in frequencies.
_INT = re.compile(r"-?\d+")
_UINT = re.compile(r"\d+")
_FREQ = re.compile(r"\d+\.?\d*|\.\d+")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")
_NAME = re.compile(r"[-\w]+")
_FILE_NAME = re.compile(r"~?[-\w]*\.?\w*")
_FMT = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?")
_GAIN = re.compile(r"(?P<gain>[^(/]*)(?:\((?P<baseline>[^)]*)\))?(?:/(?P<units>.*))?")
_UNITS = re.compile(r"[\w^\-?%/]*")


def header_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number in the file, stripped text) of every non-comment, non-empty line."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def check_header(text: str, name: str) -> None:
    """Raise RecordError (message ``"<name>: <where>: <what>"``) unless ``text`` is a
    WFDB header whose fields all parse and lie in the ranges the readers handle."""
    if "\x00" in text:
        raise RecordError(f"{name}: header is not text (it holds NUL bytes)")
    lines = header_lines(text)
    if not lines:
        raise RecordError(f"{name}: header is empty")
    number, record_line = lines[0]
    where = f"{name}: header line {number} (record line)"
    fields = record_line.split()
    if len(fields) < 2:
        raise RecordError(f"{where}: expected at least a record name and the number of "
                          f"signals, found {record_line[:60]!r}")
    record_name, _, n_seg = fields[0].partition("/")
    if not _NAME.fullmatch(record_name):
        raise RecordError(f"{where}: record name {_short(record_name)} has characters other "
                          "than letters, digits, '-' and '_'")
    n_sig = _count(fields[1], "number of signals", where, MAX_SIGNALS)
    if len(fields) > 2:
        _frequency(fields[2], where)
    if len(fields) > 3:
        _count(fields[3], "signal length", where, MAX_SAMPLES, unit=" samples")
    if len(fields) > 4:
        if not _valid_time(fields[4]):
            raise RecordError(f"{where}: base time {_short(fields[4])} is not a time "
                              "(HH:MM:SS)")
    if len(fields) > 5:
        if not _valid_date(fields[5]):
            raise RecordError(f"{where}: base date {_short(fields[5])} is not a date "
                              "(DD/MM/YYYY)")
    if len(fields) > 6:
        raise RecordError(f"{where}: {len(fields)} fields, at most 6 are defined "
                          "(name, signals, frequency, length, time, date)")
    rest = lines[1:]
    if n_seg or fields[0].endswith("/"):
        segments = _count(n_seg, "number of segments", where, MAX_SIGNALS)
        if segments == 0:
            raise RecordError(f"{where}: multi-segment record with 0 segments")
        if len(rest) != segments:
            raise RecordError(f"{name}: multi-segment record: the record line says {segments} "
                              f"segments but {len(rest)} segment lines follow")
        for number, line in rest:
            _segment_line(line, f"{name}: header line {number} (segment)")
        return
    if n_sig == 0:
        raise RecordError(f"{where}: the record has 0 signals")
    if len(rest) != n_sig:
        raise RecordError(f"{name}: header says {n_sig} signal{'s' * (n_sig != 1)} but has "
                          f"{len(rest)} signal line{'s' * (len(rest) != 1)}")
    for index, (number, line) in enumerate(rest, start=1):
        _signal_line(line, f"{name}: header line {number} (signal {index})")


def _signal_line(line: str, where: str) -> None:
    """``file format[xspf][:skew][+offset] [gain[(baseline)][/units] [res [zero [init
    [checksum [block [description]]]]]]]``."""
    fields = line.split(maxsplit=8)
    if len(fields) < 2:
        raise RecordError(f"{where}: expected at least a file name and a format, found "
                          f"{line[:60]!r}")
    if not _FILE_NAME.fullmatch(fields[0]):
        raise RecordError(f"{where}: signal file name {_short(fields[0])} is not a plain file "
                          "name in the header's folder")
    fmt = _FMT.fullmatch(fields[1])
    if fmt is None:
        raise RecordError(f"{where}: format {_short(fields[1])} is not a WFDB format "
                          "specification (e.g. 16, 212, 16x1+24)")
    if fmt["fmt"] not in SIGNAL_FORMATS:
        raise RecordError(f"{where}: format {fmt['fmt']} is not a WFDB signal format "
                          f"({', '.join(SIGNAL_FORMATS)})")
    if fmt["spf"] is not None and not 1 <= int(fmt["spf"]) <= MAX_SAMPS_PER_FRAME:
        raise RecordError(f"{where}: {fmt['spf']} samples per frame, expected 1 to "
                          f"{MAX_SAMPS_PER_FRAME}")
    for key, label in (("skew", "skew"), ("offset", "byte offset")):
        if fmt[key] is not None and int(fmt[key]) > MAX_SAMPLES:
            raise RecordError(f"{where}: {label} {fmt[key]} is beyond any signal file")
    if len(fields) > 2:
        _gain(fields[2], where)
    # ADC resolution, zero, initial value, checksum, block size: each optional; as in wfdb,
    # the first field that is not a whole number starts the description.
    labels = ("ADC resolution", "ADC zero", "initial value", "checksum", "block size")
    for position, (value, label) in enumerate(zip(fields[3:8], labels)):
        if not _INT.fullmatch(value) or (position in (0, 4) and value.startswith("-")):
            break
        if abs(int(value)) > MAX_INT:
            raise RecordError(f"{where}: {label} {value} is out of range (32-bit integer)")
        if position == 0 and int(value) > 64:
            raise RecordError(f"{where}: ADC resolution {value} bits, expected 0 to 64")


def _gain(spec: str, where: str) -> None:
    """``gain[(baseline)][/units]``: a finite gain, an integer baseline, plain units."""
    match = _GAIN.fullmatch(spec)
    if match is None:
        raise RecordError(f"{where}: {_short(spec)} is not a gain (expected e.g. 1000(0)/mV)")
    gain, baseline, units = match["gain"], match["baseline"], match["units"]
    if not _NUMBER.fullmatch(gain):
        raise RecordError(f"{where}: gain {_short(gain)} is not a number (expected e.g. "
                          "1000(0)/mV)")
    if not math.isfinite(float(gain)):
        raise RecordError(f"{where}: gain {gain} is out of range")
    if baseline is not None:
        if not _INT.fullmatch(baseline):
            raise RecordError(f"{where}: baseline {_short(baseline)} is not a whole number")
        if abs(int(baseline)) > MAX_INT:
            raise RecordError(f"{where}: baseline {baseline} is out of range (32-bit integer)")
    if units is not None and (not units or not _UNITS.fullmatch(units)):
        raise RecordError(f"{where}: units {_short(units)} are not a unit name (e.g. mV, uV)")


def _segment_line(line: str, where: str) -> None:
    fields = line.split()
    if len(fields) != 2:
        raise RecordError(f"{where}: expected a segment name and its length, found "
                          f"{line[:60]!r}")
    if not (fields[0] == "~" or _NAME.fullmatch(fields[0])):
        raise RecordError(f"{where}: segment name {_short(fields[0])} is not a record name")
    _count(fields[1], "segment length", where, MAX_SAMPLES, unit=" samples")


def _count(text: str, label: str, where: str, maximum: int, unit: str = "") -> int:
    if not _UINT.fullmatch(text):
        raise RecordError(f"{where}: {label} {_short(text)} is not a whole number >= 0")
    value = int(text)
    if value > maximum:
        raise RecordError(f"{where}: {label} {value}{unit} is out of range (at most {maximum})")
    return value


def _frequency(text: str, where: str) -> float:
    """``fs[/counter_freq[(base_counter)]]``; fs within [MIN_FS_HZ, MAX_FS_HZ]."""
    fs_text, _, counter = text.partition("/")
    if not _FREQ.fullmatch(fs_text):
        raise RecordError(f"{where}: sampling frequency {_short(fs_text)} is not a number")
    fs = float(fs_text)
    if not fs > 0:
        raise RecordError(f"{where}: sampling frequency {fs_text} Hz is not positive")
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        raise RecordError(f"{where}: sampling frequency {fs_text} Hz is out of range "
                          f"({MIN_FS_HZ:g} Hz to {MAX_FS_HZ:g} Hz)")
    if counter:
        match = re.fullmatch(r"(?P<freq>[^(]*)(?:\((?P<base>[^)]*)\))?", counter)
        freq, base = match["freq"], match["base"]
        if not _FREQ.fullmatch(freq) or not 0 < float(freq) < math.inf:
            raise RecordError(f"{where}: counter frequency {_short(freq)} is not a positive "
                              "number")
        if base is not None and not _NUMBER.fullmatch(base):
            raise RecordError(f"{where}: base counter value {_short(base)} is not a number")
    return fs


def _valid_time(text: str) -> bool:
    """As wfdb reads a base time: SS, MM:SS or HH:MM:SS, each with optional .ffffff."""
    formats = {0: "%S", 1: "%M:%S", 2: "%H:%M:%S"}
    if text.count(":") not in formats or not re.fullmatch(r"[\d:.]+", text):
        return False
    fmt = formats[text.count(":")] + (".%f" if "." in text else "")
    try:
        datetime.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _valid_date(text: str) -> bool:
    """As wfdb reads a base date: DD/MM/YYYY."""
    if not re.fullmatch(r"\d{1,2}/\d{1,2}/\d{1,4}", text):
        return False
    try:
        datetime.datetime.strptime(text, "%d/%m/%Y")
    except ValueError:
        return False
    return True


def _short(text: str) -> str:
    """A field as quoted text, cut to 40 characters (a junk field can be any length)."""
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text)
