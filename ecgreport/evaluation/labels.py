"""PTB-XL label sets as in the PTB-XL benchmark (Strodthoff et al. 2021).

Conventions, copied from the benchmark code (``utils.compute_label_aggregations`` and
``utils.select_data`` in github.com/helme/ecg_ptbxl_benchmarking):

- Every key of a record's ``scp_codes`` counts, whatever its likelihood (0 included):
  ``{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}`` has LVOLT (form) and SR (rhythm).
- ``superclass`` (benchmark: superdiagnostic): the ``diagnostic_class`` of the record's
  statements with ``diagnostic == 1`` (NORM, MI, STTC, CD, HYP).
- ``subclass`` (subdiagnostic): their ``diagnostic_subclass`` (23 classes).
- ``diagnostic``: the diagnostic statements themselves (44).
- ``form``: statements with ``form == 1`` (19; some are also diagnostic, e.g. NDT, NST_).
- ``rhythm``: statements with ``rhythm == 1`` (12).
- ``all``: every statement (71).
- A record without any label of the task is left out of that task's evaluation.
- Classes: the benchmark keeps classes with more than ``min_samples`` records over the whole
  database and used ``min_samples = 0``, i.e. every class that occurs. `LabelTable.classes`
  does the same by default (``folds=None, min_count=1``); pass ``folds=[10]`` to keep only the
  classes present in the evaluated records (a class absent there has no AUC).

Only the standard library and numpy: csv + ast.literal_eval, no pandas.
"""

from __future__ import annotations

import ast
import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TASKS = ("superclass", "subclass", "diagnostic", "form", "rhythm", "all")
# The benchmark's names for the same tasks.
_ALIASES = {"superdiagnostic": "superclass", "subdiagnostic": "subclass", "all_scp": "all"}


def _task(name: str) -> str:
    task = _ALIASES.get(name, name)
    if task not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return task


def _flag(value: str) -> bool:
    return value.strip() not in ("", "0", "0.0", "nan")


def _text(value: str) -> str | None:
    value = value.strip()
    return value if value and value != "nan" else None


def load_scp_statements(path: str | Path) -> list[dict]:
    """The SCP statements of PTB-XL's scp_statements.csv, one dict per statement.

    Keys: ``code``, ``description`` (English), ``diagnostic``, ``form``, ``rhythm`` (bool),
    ``diagnostic_class``, ``diagnostic_subclass`` (str, or None for non-diagnostic statements),
    ``category`` (the "Statement Category" column). In file order; 71 rows for PTB-XL 1.0.3.
    """
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            code = row.get("") or row.get("Unnamed: 0") or next(iter(row.values()))
            rows.append({
                "code": code.strip(),
                "description": row["description"].strip(),
                "diagnostic": _flag(row["diagnostic"]),
                "form": _flag(row["form"]),
                "rhythm": _flag(row["rhythm"]),
                "diagnostic_class": _text(row["diagnostic_class"]),
                "diagnostic_subclass": _text(row["diagnostic_subclass"]),
                "category": (row.get("Statement Category") or "").strip(),
            })
    return rows


def task_labels(scp_codes: Iterable[str], statements: Sequence[dict]) -> dict[str, frozenset[str]]:
    """The label set of each task for one record, from its scp_codes keys."""
    by_code = {s["code"]: s for s in statements}
    known = [by_code[c] for c in scp_codes if c in by_code]
    diagnostic = [s for s in known if s["diagnostic"]]
    return {
        "superclass": frozenset(s["diagnostic_class"] for s in diagnostic if s["diagnostic_class"]),
        "subclass": frozenset(s["diagnostic_subclass"] for s in diagnostic if s["diagnostic_subclass"]),
        "diagnostic": frozenset(s["code"] for s in diagnostic),
        "form": frozenset(s["code"] for s in known if s["form"]),
        "rhythm": frozenset(s["code"] for s in known if s["rhythm"]),
        "all": frozenset(s["code"] for s in known),
    }


@dataclass(frozen=True)
class LabelTable:
    """Per-record label sets of every task, with the record's stratified fold.

    ``labels[task][ecg_id]`` is a frozenset of class names (empty when the record has none).

    >>> table = load_ptbxl_labels("../shared/data/fixtures/ptb-xl-mini")  # doctest: +SKIP
    >>> ids = table.select("superclass", folds=[10])                       # doctest: +SKIP
    >>> y = table.matrix("superclass", ids, table.classes("superclass"))   # doctest: +SKIP
    """

    ecg_ids: tuple[int, ...]
    strat_fold: dict[int, int]
    labels: dict[str, dict[int, frozenset[str]]]

    def ids_in(self, folds: Iterable[int] | None = None) -> list[int]:
        """ecg_ids in the given folds (all when None), ascending."""
        if folds is None:
            return list(self.ecg_ids)
        wanted = set(folds)
        return [i for i in self.ecg_ids if self.strat_fold[i] in wanted]

    def select(self, task: str, folds: Iterable[int] | None = None) -> list[int]:
        """ecg_ids in `folds` with at least one label of `task` (the benchmark drops the rest)."""
        sets = self.labels[_task(task)]
        return [i for i in self.ids_in(folds) if sets[i]]

    def counts(self, task: str, folds: Iterable[int] | None = None) -> Counter:
        """Number of records per class of `task` in `folds`."""
        sets = self.labels[_task(task)]
        return Counter(c for i in self.ids_in(folds) for c in sets[i])

    def classes(self, task: str, folds: Iterable[int] | None = None, min_count: int = 1) -> list[str]:
        """Classes of `task` with at least `min_count` records in `folds`, sorted by name.

        The default (all folds, min_count=1) is the benchmark's class list.
        """
        return sorted(c for c, n in self.counts(task, folds).items() if n >= min_count)

    def matrix(self, task: str, ecg_ids: Sequence[int], classes: Sequence[str]) -> np.ndarray:
        """(len(ecg_ids), len(classes)) bool multi-hot matrix; labels outside `classes` are ignored."""
        sets = self.labels[_task(task)]
        column = {c: j for j, c in enumerate(classes)}
        y = np.zeros((len(ecg_ids), len(classes)), dtype=bool)
        for row, ecg_id in enumerate(ecg_ids):
            for c in sets[ecg_id]:
                if c in column:
                    y[row, column[c]] = True
        return y


def load_ptbxl_labels(data_dir: str | Path) -> LabelTable:
    """Build the label table of every task from ``data_dir``/ptbxl_database.csv and scp_statements.csv."""
    data_dir = Path(data_dir)
    statements = load_scp_statements(data_dir / "scp_statements.csv")
    ids: list[int] = []
    folds: dict[int, int] = {}
    labels: dict[str, dict[int, frozenset[str]]] = {t: {} for t in TASKS}
    with open(data_dir / "ptbxl_database.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ecg_id = int(float(row["ecg_id"]))
            ids.append(ecg_id)
            folds[ecg_id] = int(row["strat_fold"])
            for task, value in task_labels(ast.literal_eval(row["scp_codes"]), statements).items():
                labels[task][ecg_id] = value
    return LabelTable(ecg_ids=tuple(sorted(ids)), strat_fold=folds, labels=labels)
