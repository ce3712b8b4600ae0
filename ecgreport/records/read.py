"""Read a WFDB record into the 12 standard leads, in mV, with a lead mask and warnings.

Leads are matched by name (:func:`ecgreport.leads.canonical_lead`), never by position:
extra leads are dropped, missing limb leads are derived from two of I, II, III
(:mod:`ecgreport.signal.limb`), other missing ones are zero-filled and masked, and every such
decision is one line in :attr:`ECGRecord.warnings`. A lead is also masked (and zeroed)
when its header gain is 0 (uncalibrated), when it is all NaN, or when it is flat
(peak-to-peak below 1e-3 mV over the samples read).

Headers that qualify go through :mod:`ecgreport.records.fastread` (one ``np.fromfile``);
everything else (other formats, FLAC, multi-segment records) through ``wfdb.rdrecord``.
wfdb (and pandas with it) is imported only then, so the fast path starts in numpy alone.
Both give a :class:`~ecgreport.records.fastread.RawSignal` to the same mapping code.

Every header is checked field by field first (:mod:`ecgreport.records.header`), so wfdb
never sees a header it would fail on with Python's own messages. Every failure is a
:class:`~ecgreport.errors.RecordError` whose message names the header file and the
problem on one line, in words a user can act on (never a raw exception text), e.g.
``00001_lr.hea: signal file 00001_lr.dat is truncated (expected 24000 bytes, found 1000)``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgreport.errors import RecordError
from ecgreport.leads import STANDARD_LEADS, canonical_lead
from ecgreport.records import fastread
from ecgreport.records.discover import RecordRef, printable
from ecgreport.records.fastread import RawSignal
from ecgreport.records.header import check_header
from ecgreport.signal.limb import basis_of, derive_limb_leads

if TYPE_CHECKING:
    import wfdb

logger = logging.getLogger(__name__)

FLAT_PTP_MV = 1e-3
"""A lead whose peak-to-peak amplitude over the samples read is below this is flat."""

# Header unit spelling (lower case) -> factor to mV. "µ" comes as U+00B5 or U+03BC.
_TO_MV = {"mv": 1.0, "uv": 1e-3, "\u00b5v": 1e-3, "\u03bcv": 1e-3, "v": 1e3}
# Bytes per sample of the uncompressed WFDB formats, to spot truncated signal files.
_BYTES_PER_SAMPLE = {
    "8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
    "212": 1.5, "310": 4 / 3, "311": 4 / 3,
}
_LEAD_INDEX = {lead: i for i, lead in enumerate(STANDARD_LEADS)}


@dataclass(frozen=True)
class HeaderInfo:
    """What a header says about a record, without reading its samples.

    ``sig_names`` and ``units`` are as written in the header (one per signal).
    """

    record_id: str
    path: Path
    fs_hz: float
    n_samples: int
    sig_names: list[str]
    units: list[str]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs_hz


@dataclass
class ECGRecord:
    """One record (or a window of it) as the 12 standard leads.

    ``signal_mv``: shape ``(12, n_samples)`` float32, rows in ``STANDARD_LEADS`` order,
    mV, zeros where ``lead_mask`` (shape ``(12,)`` bool) is False. ``fs_hz`` is the
    record's own sampling rate. ``leads_found`` are the header's lead names.
    ``derived_leads``: limb leads computed from two of I, II, III because the record lacks
    them (or they were unusable); they are True in ``lead_mask``.
    """

    record_id: str
    path: Path
    fs_hz: float
    signal_mv: np.ndarray
    lead_mask: np.ndarray
    leads_found: list[str]
    warnings: list[str] = field(default_factory=list)
    derived_leads: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.signal_mv.shape[1] / self.fs_hz


def read_header(ref_or_path: RecordRef | str | os.PathLike) -> HeaderInfo:
    """Read a record's header (a RecordRef, or the path of the ``.hea`` with or without
    its extension). Raises RecordError if the header is missing or cannot be parsed.

    >>> read_header("records100/00000/00001_lr").n_samples  # doctest: +SKIP
    1000
    """
    record_id, hea = _locate(ref_or_path)
    name = _display(hea)
    text, fast = _read_header_text(hea, name)
    if fast is not None:
        return HeaderInfo(record_id, Path(hea), fast.fs_hz, fast.sig_len,
                          list(fast.sig_name), list(fast.units))
    header = _wfdb_header(hea, name)
    if _is_multi_segment(header):
        # The layout header (variable layout) or the first segment names the signals.
        first = next((s for s in header.segments if s is not None), None)
        names = list(first.sig_name or []) if first is not None else []
        units = list(first.units or []) if first is not None else []
    else:
        names = list(header.sig_name or [])
        units, _ = _lenient_units_gains(text, len(names), list(header.units or []))
    n_samples = header.sig_len if header.sig_len is not None else _infer_sig_len(hea, header, name)
    return HeaderInfo(record_id, Path(hea), float(header.fs), int(n_samples), names, units)


def read_record(
    ref_or_path: RecordRef | str | os.PathLike, sampfrom: int = 0, sampto: int | None = None
) -> ECGRecord:
    """Read samples ``[sampfrom, sampto)`` of a record (all of it by default).

    Only that span is read from disk, so a 24 h Holter can be read window by window.
    Returns the 12 standard leads in mV (see :class:`ECGRecord`). Raises RecordError.

    >>> rec = read_record("records100/00000/00001_lr")  # doctest: +SKIP
    >>> rec.signal_mv.shape, rec.fs_hz, rec.lead_mask.all()
    ((12, 1000), 100.0, True)
    """
    record_id, hea = _locate(ref_or_path)
    name = _display(hea)
    text, fast = _read_header_text(hea, name)
    if fast is not None:
        sampto = _check_span(name, fast.sig_len, sampfrom, sampto)
        raw = fastread.read_raw(hea, fast, sampfrom, sampto, name)
    else:
        raw = _read_wfdb(hea, text, sampfrom, sampto, name)
    return assemble(record_id, Path(hea), raw, name)


def assemble(record_id: str, path: Path, raw: RawSignal, name: str) -> ECGRecord:
    """Map a record's channels onto the 12 standard leads; convert to mV; check quality.

    ``name`` is the file name used in warnings and errors. Shared by both readers.
    """
    n_samples = raw.p_signal.shape[0]
    if n_samples == 0:
        raise RecordError(f"{name}: signal is empty (0 samples)")
    warnings: list[str] = []

    channel_of_lead: dict[str, int] = {}
    extra, duplicate = [], []
    for channel, sig_name in enumerate(raw.sig_name):
        lead = canonical_lead(sig_name) if sig_name else None
        if lead is None:
            extra.append(str(sig_name))
        elif lead in channel_of_lead:
            duplicate.append(str(sig_name))
        else:
            channel_of_lead[lead] = channel
    if not channel_of_lead:
        found = ", ".join(map(str, raw.sig_name)) or "none"
        raise RecordError(f"{name}: none of the 12 standard leads found (leads: {found})")
    if extra:
        warnings.append(f"dropped non-standard leads: {', '.join(extra)}")
    if duplicate:
        warnings.append(f"duplicate leads ignored, first kept: {', '.join(duplicate)}")

    leads = [lead for lead in STANDARD_LEADS if lead in channel_of_lead]
    channels = [channel_of_lead[lead] for lead in leads]
    signal = raw.p_signal[:, channels].T  # (n_leads_found, n_samples) float64, header units
    scale = _unit_scale(leads, [raw.units[c] if c < len(raw.units) else "mV" for c in channels],
                        warnings)
    if np.any(scale != 1.0):
        signal = signal * scale[:, None]

    usable = np.array([channel_of_lead[lead] not in raw.zero_gain for lead in leads])
    for lead, ok in zip(leads, usable):
        if not ok:
            warnings.append(f"lead {lead} has gain 0 (uncalibrated): unusable")

    nan = np.isnan(signal)
    if nan.any():
        # Flatness over the real samples only, not the zeros that will replace NaN.
        ptp = (np.max(np.where(nan, -np.inf, signal), axis=1)
               - np.min(np.where(nan, np.inf, signal), axis=1))
        nan_counts = nan.sum(axis=1)
        all_nan = nan_counts == n_samples
        partial = [f"{lead} ({count})" for lead, count, ok, gone
                   in zip(leads, nan_counts, usable, all_nan) if count and ok and not gone]
        for lead, ok, gone in zip(leads, usable, all_nan):
            if ok and gone:
                warnings.append(f"lead {lead} is all NaN: unusable")
        if partial:
            warnings.append(f"NaN samples set to 0: {', '.join(partial)}")
        usable &= ~all_nan
        signal = np.where(nan, 0.0, signal)
    else:
        ptp = signal.max(axis=1) - signal.min(axis=1)

    flat = usable & (ptp < FLAT_PTP_MV)
    for lead in np.asarray(leads)[flat]:
        warnings.append(f"flat lead {lead}")
    usable &= ~flat
    if not usable.any():
        raise RecordError(f"{name}: no usable leads (all flat, all NaN or gain 0)")

    rows = np.array([_LEAD_INDEX[lead] for lead in leads])
    signal_mv = np.zeros((len(STANDARD_LEADS), n_samples), dtype=np.float32)
    signal_mv[rows[usable]] = signal[usable]
    lead_mask = np.zeros(len(STANDARD_LEADS), dtype=bool)
    lead_mask[rows[usable]] = True
    # Limb leads missing or unusable are derived from two of I, II, III (exact identities);
    # only the leads that still cannot be had are zero-filled.
    basis = basis_of(lead_mask)
    derived = derive_limb_leads(signal_mv, lead_mask)
    if derived:
        warnings.append(f"derived leads {', '.join(derived)} from {basis} (Einthoven, Goldberger)")
    missing = [lead for lead, ok in zip(STANDARD_LEADS, lead_mask) if not ok]
    absent = [lead for lead in missing if lead not in channel_of_lead]
    if absent:
        warnings.append(f"missing leads: {', '.join(absent)} (zero-filled)")
    if warnings:
        logger.debug("%s: %s", name, "; ".join(warnings))
    return ECGRecord(record_id, path, float(raw.fs_hz), signal_mv, lead_mask,
                     [str(s) for s in raw.sig_name], warnings, derived)


def _unit_scale(leads: list[str], units: list[str], warnings: list[str]) -> np.ndarray:
    """Factor to mV per lead; unknown units are assumed mV, with a warning."""
    scale = np.ones(len(leads))
    converted: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}
    for i, (lead, unit) in enumerate(zip(leads, units)):
        unit = (unit or "mV").strip()
        factor = _TO_MV.get(unit.lower())
        if factor is None:
            unknown.setdefault(unit, []).append(lead)
        else:
            scale[i] = factor
            if factor != 1.0:
                converted.setdefault(unit, []).append(lead)
    for unit, unit_leads in converted.items():
        warnings.append(f"converted {unit} to mV: {', '.join(unit_leads)}")
    for unit, unit_leads in unknown.items():
        warnings.append(f"unknown unit '{unit}' for leads {', '.join(unit_leads)}: assumed mV")
    return scale


def _locate(ref_or_path: RecordRef | str | os.PathLike) -> tuple[str, str]:
    """(record_id, absolute header path) for a RecordRef or a path with/without ``.hea``."""
    if isinstance(ref_or_path, RecordRef):
        return ref_or_path.record_id, os.fspath(ref_or_path.header_path)
    path = os.fspath(ref_or_path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path.endswith(".hea"):
        path += ".hea"
    path = os.path.abspath(path)
    return os.path.basename(path)[: -len(".hea")], path


def _display(path: str) -> str:
    """The header's file name, printable even if it is not valid UTF-8."""
    return printable(os.path.basename(path))


_last_header: tuple = (None, None)  # ((path, inode, size, mtime), parsed): see below


def _read_header_text(hea: str, name: str) -> tuple[str, fastread.ParsedHeader | None]:
    """The header's text and fast-path parse. The last one is kept: `batch` reads each
    header twice in a row (the window plan, then the samples), and a stat is ~50x cheaper
    than reading and parsing again. A file changed since has another size or mtime."""
    global _last_header
    try:
        st = os.stat(hea)
        key = (hea, st.st_ino, st.st_size, st.st_mtime_ns)
        cached_key, parsed = _last_header
        if cached_key == key:
            return parsed
        parsed = fastread.read_header_file(hea)
        check_header(parsed[0], name)  # before any parser sees it: wfdb trusts its input
        _last_header = (key, parsed)
        return parsed
    except FileNotFoundError as err:
        raise RecordError(f"{name}: header file not found") from err
    except OSError as err:
        raise RecordError(f"{name}: cannot read header: {err.strerror or err}") from err


def _is_multi_segment(header: wfdb.Record | wfdb.MultiRecord) -> bool:
    import wfdb  # already loaded by whoever produced `header`

    return isinstance(header, wfdb.MultiRecord)


def _wfdb_header(hea: str, name: str) -> wfdb.Record | wfdb.MultiRecord:
    import wfdb  # here, not at the top: only the general reader needs it

    try:
        return wfdb.rdheader(hea[: -len(".hea")], rd_segments=True)
    except FileNotFoundError as err:  # a segment header of a multi-segment record
        missing = os.path.basename(err.filename or "") or "a segment header"
        raise RecordError(f"{name}: multi-segment record: {printable(missing)} not found") from err
    except Exception as err:  # noqa: BLE001 - wfdb raises many types; all mean "bad header"
        # check_header passed, so this is rare; Python's own text ("list index out of
        # range") would tell the user nothing: it goes to the debug log only.
        logger.debug("wfdb.rdheader(%s) failed", name, exc_info=True)
        raise RecordError(f"{name}: not a valid WFDB header ({_wfdb_reason(err)})") from err


def _read_wfdb(hea: str, text: str, sampfrom: int, sampto: int | None, name: str) -> RawSignal:
    """General reader: any format wfdb reads, multi-segment records included."""
    import wfdb

    header = _wfdb_header(hea, name)
    multi_segment = _is_multi_segment(header)
    if multi_segment:
        units_of, zero_gain_names = _segment_units_gains(hea, header)
    else:
        _check_signal_files(hea, header, name)
    n_samples = header.sig_len if header.sig_len is not None else _infer_sig_len(hea, header, name)
    sampto = _check_span(name, n_samples, sampfrom, sampto)
    try:
        if header.sig_len is not None:
            record = wfdb.rdrecord(hea[: -len(".hea")], sampfrom=sampfrom, sampto=sampto,
                                   physical=True, m2s=True, smooth_frames=True)
        else:  # wfdb infers a missing length only when reading to the end; cut here
            record = wfdb.rdrecord(hea[: -len(".hea")], physical=True, m2s=True,
                                   smooth_frames=True)
            if record.p_signal is not None:
                record.p_signal = record.p_signal[sampfrom:sampto]
    except FileNotFoundError as err:
        missing = os.path.basename(err.filename or "") or "a signal file"
        raise RecordError(f"{name}: signal file {printable(missing)} not found") from err
    except Exception as err:  # noqa: BLE001 - as above: the record is unreadable
        logger.debug("wfdb.rdrecord(%s) failed", name, exc_info=True)
        files = sorted({f for f in (header.file_name or []) if f} if not multi_segment
                       else {"of a segment"})
        fmts = sorted({f for f in (getattr(header, "fmt", None) or []) if f})
        raise RecordError(
            f"{name}: signal file {', '.join(files) or '?'} cannot be decoded (corrupt, or not "
            f"in the format the header gives{': ' + ', '.join(fmts) if fmts else ''})") from err
    sig_name = list(record.sig_name or [])
    wfdb_units = list(record.units or ["mV"] * len(sig_name))
    p_signal = record.p_signal
    if p_signal is None or p_signal.ndim != 2:
        raise RecordError(f"{name}: signal is empty (0 samples)")
    if multi_segment:
        units = [units_of.get(s, u) for s, u in zip(sig_name, wfdb_units)]
        zero_gain = frozenset(i for i, s in enumerate(sig_name) if s in zero_gain_names)
    else:
        units, gains = _lenient_units_gains(text, len(sig_name), wfdb_units)
        zero_gain = frozenset(i for i, g in enumerate(gains) if g == 0)
    return RawSignal(float(record.fs), p_signal, sig_name, units, zero_gain)


def _lenient_units_gains(text: str, n_sig: int, wfdb_units: list[str]) -> tuple[list[str], list]:
    """Units and gains as the header text spells them.

    wfdb reads headers as ASCII and drops other characters, so ``µV`` would become
    ``V`` (a factor of 10^6 off), and it replaces a gain of 0 by 200. Falls back to
    wfdb's units (and unknown gains) where the signal lines cannot be matched up.
    """
    lines = fastread.header_lines(text)[1:]
    units, gains = list(wfdb_units), [None] * n_sig
    if len(lines) != n_sig:
        return units, gains
    for i, line in enumerate(lines):
        fields = line.split()
        spec = fastread.parse_gain_spec(fields[2]) if len(fields) > 2 else None
        if spec is not None:
            gains[i], _, units[i] = spec
    return units, gains


def _segment_units_gains(hea: str, header: wfdb.MultiRecord) -> tuple[dict, set]:
    """For a multi-segment record: header units per signal name, names with gain 0."""
    units_of: dict[str, str] = {}
    zero_gain: set[str] = set()
    directory = os.path.dirname(hea)
    for seg_name, segment in zip(header.seg_name, header.segments):
        if segment is None or not segment.sig_name:
            continue
        try:
            with open(os.path.join(directory, seg_name + ".hea"), "rb") as f:
                text = fastread.decode_header(f.read())
        except OSError:
            continue  # rdrecord will report it
        units, gains = _lenient_units_gains(text, len(segment.sig_name), list(segment.units))
        for sig_name, unit, gain in zip(segment.sig_name, units, gains):
            units_of.setdefault(sig_name, unit)
            if gain == 0 and segment.sig_len:  # the layout header's gains are not used
                zero_gain.add(sig_name)
    return units_of, zero_gain


def _check_signal_files(hea: str, header: wfdb.Record, name: str) -> None:
    """Raise RecordError for a missing or truncated signal file of a single-segment record."""
    if not header.n_sig or header.sig_len is None:
        return
    directory = os.path.dirname(hea)
    per_file: dict[str, list[int]] = {}
    for channel, file_name in enumerate(header.file_name):
        if file_name and not file_name.startswith("~"):
            per_file.setdefault(file_name, []).append(channel)
    for file_name, channels in per_file.items():
        path = os.path.join(directory, file_name)
        try:
            found = os.path.getsize(path)
        except OSError as err:
            raise RecordError(f"{name}: signal file {file_name} not found") from err
        fmt = header.fmt[channels[0]]
        if fmt not in _BYTES_PER_SAMPLE:
            continue  # compressed (FLAC): its size says nothing; wfdb checks it
        samples_per_frame = sum((header.samps_per_frame[c] or 1) for c in channels)
        offset = header.byte_offset[channels[0]] or 0
        expected = offset + math.floor(header.sig_len * samples_per_frame * _BYTES_PER_SAMPLE[fmt])
        if found < expected:
            raise RecordError(f"{name}: signal file {file_name} is truncated "
                              f"(expected {expected} bytes, found {found})")


def _infer_sig_len(hea: str, header, name: str) -> int:
    """Signal length from the file size, for headers that omit it (single file, fixed size)."""
    files = {f for f in (getattr(header, "file_name", None) or []) if f and not f.startswith("~")}
    fmts = set(getattr(header, "fmt", None) or [])
    if len(files) == 1 and len(fmts) == 1 and (fmt := fmts.pop()) in _BYTES_PER_SAMPLE:
        file_name = files.pop()
        try:
            size = os.path.getsize(os.path.join(os.path.dirname(hea), file_name))
        except OSError as err:
            raise RecordError(f"{name}: signal file {file_name} not found") from err
        frame = sum(s or 1 for s in header.samps_per_frame) * _BYTES_PER_SAMPLE[fmt]
        return max(0, int((size - (header.byte_offset[0] or 0)) // frame))
    raise RecordError(f"{name}: header gives no signal length and it cannot be inferred")


def _check_span(name: str, n_samples: int, sampfrom: int, sampto: int | None) -> int:
    if n_samples == 0:
        raise RecordError(f"{name}: signal is empty (0 samples)")
    if sampto is None:
        sampto = n_samples
    if not 0 <= sampfrom < sampto <= n_samples:
        raise RecordError(f"{name}: cannot read samples [{sampfrom}, {sampto}) "
                          f"of a record with {n_samples} samples")
    return sampto


def _wfdb_reason(err: BaseException) -> str:
    """wfdb's own message where it wrote one for people, else a plain description."""
    text = " ".join(str(err).split())
    if type(err).__name__ == "HeaderSyntaxError" and text:
        return f"wfdb: {text}"
    return "the WFDB reader rejected it"
