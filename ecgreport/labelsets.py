"""The one reader of ``--labels`` CSV files (used by ``ecgreport batch`` and ``export-onnx``).

The format, strictly::

    label,description,more prompts...
    LBBB,left bundle branch block,complete left bundle branch block
    AF,atrial fibrillation

- UTF-8 (a byte-order mark is allowed), comma-separated, standard CSV quoting (a description
  with a comma is written in double quotes).
- The first row is the header: its first two cells are ``label`` and ``description``; further
  cells name the extra prompt columns and are not read.
- Every other row: a label (unique), a description (not empty), and optionally more prompts.
  A label's text embedding is the mean of the embeddings of its description and prompts.
- Blank lines are skipped. Anything else that does not fit (a ``;``-separated file, one
  column, an empty description, an unterminated quote, a label given twice) is an error
  naming the file and the line, never a guess.

>>> import tempfile, os
>>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
...     _ = f.write('label,description\\nAF,"atrial fibrillation, any",af\\n')
>>> read_labels_csv(f.name)
{'AF': ['atrial fibrillation, any', 'af']}
>>> os.remove(f.name)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ecgreport.errors import LabelsFileError

HEADER = ("label", "description")


def read_labels_csv(path: str | Path) -> dict[str, list[str]]:
    """Read a labels CSV into ``{label: [description, *more prompts]}``, in file order.

    Raises :class:`~ecgreport.errors.LabelsFileError` (exit code 2) naming the file and the
    line for anything outside the format in the module docstring.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LabelsFileError(f"cannot read the labels file {path}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise LabelsFileError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x}); "
                              "save the file as UTF-8 CSV") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise LabelsFileError(f"{path}, line {line}: a NUL byte: this is not a text CSV file")

    def fail(line: int, problem: str) -> LabelsFileError:
        return LabelsFileError(f"{path}, line {line}: {problem}")

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    labels: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    while True:
        start = reader.line_num + 1  # a quoted cell may span lines: a row is named by its first
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            if "unexpected end of data" in str(err):
                raise fail(start, "a double quote opened in this row is never closed") from None
            raise fail(start, f"not valid CSV ({err}); quote a cell that holds a comma or a "
                              'double quote, and write a double quote inside it as ""') from None
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue  # a blank line
        if not header_seen:
            header_seen = True
            if len(cells) == 1 and ";" in cells[0]:
                raise fail(start, "the columns are separated by ';': write a comma-separated file "
                                  "(header 'label,description')")
            if len(cells) == 1:
                raise fail(start, f"one column ({row[0]!r}): the header must be 'label,description' "
                                  "and every row a label and its description")
            if [c.lower() for c in cells[:2]] != list(HEADER):
                found = ",".join(row[:3]) + (",..." if len(row) > 3 else "")
                raise fail(start, f"the first row must be the header 'label,description' "
                                  f"(more prompt columns may follow), found {found!r}")
            continue
        label = cells[0]
        if len(cells) == 1:
            if ";" in cells[0]:
                raise fail(start, "the columns are separated by ';': write a comma-separated file")
            raise fail(start, f"label {label!r} has no description: every row needs "
                              "'label,description'")
        if not label:
            raise fail(start, "the label (first column) is empty")
        if not cells[1]:
            raise fail(start, f"label {label!r} has an empty description")
        if label in labels:
            raise fail(start, f"label {label!r} appears twice (first on line {first_line[label]})")
        labels[label] = [c for c in cells[1:] if c]
        first_line[label] = start
    if not header_seen:
        raise LabelsFileError(f"{path}: the file is empty (expected a header 'label,description' "
                              "and one row per label)")
    if not labels:
        raise LabelsFileError(f"{path}: no labels after the header (expected rows "
                              "'label,description')")
    return labels
