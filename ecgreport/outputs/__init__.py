"""What a batch run leaves in its output folder, and how it is written.

``reports/<record>.txt``, ``diagnoses.csv``, ``records.jsonl``, ``run.json``: see
:mod:`ecgreport.outputs.writers` (atomic writes, the CSV and JSONL formats, report text,
and :func:`~ecgreport.outputs.writers.merge_outputs` for ``--shard`` runs).
"""

from ecgreport.outputs.writers import (
    DIAGNOSES_CSV,
    RECORDS_JSONL,
    REPORTS_DIR,
    RUN_JSON,
    atomic_write_text,
    merge_outputs,
    read_jsonl,
    report_text,
)

__all__ = [
    "DIAGNOSES_CSV", "RECORDS_JSONL", "REPORTS_DIR", "RUN_JSON",
    "atomic_write_text", "merge_outputs", "read_jsonl", "report_text",
]
