"""Find WFDB records in a folder and read them as 12 standard leads in mV.

>>> from ecgreport.records import find_records, read_record
>>> for ref in find_records(Path("ecgs/")):  # doctest: +SKIP
...     record = read_record(ref)  # record.signal_mv: (12, n_samples) float32, mV
"""

from ecgreport.records.discover import RecordRef, find_records
from ecgreport.records.read import ECGRecord, HeaderInfo, read_header, read_record

__all__ = ["ECGRecord", "HeaderInfo", "RecordRef", "find_records", "read_header", "read_record"]
