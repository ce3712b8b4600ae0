"""Datasets of ECGs and their reports: the format training reads (`format`) and a builder
from a folder of WFDB records (`build`). No torch here."""

from ecgreport.dataset.format import Dataset, DatasetRow, check_dataset, open_dataset, parse_splits

__all__ = ["Dataset", "DatasetRow", "check_dataset", "open_dataset", "parse_splits"]
