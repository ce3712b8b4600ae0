"""Measurements a reader can check against the tracing: rate, PR, QRS, QT/QTc, axes.

:func:`measure_ecg` (numpy only) measures one record on its own sampling rate;
:func:`check_report` flags statements of a generated report that the measurements contradict.
"""

from ecgreport.measure.contradictions import check_report
from ecgreport.measure.intervals import MEASUREMENT_KEYS, empty_measurements, measure_ecg

__all__ = ["MEASUREMENT_KEYS", "check_report", "empty_measurements", "measure_ecg"]
