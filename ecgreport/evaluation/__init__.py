"""Evaluation: report text metrics, clinical statement agreement, PTB-XL labels, detection AUC.

- `text_metrics`: pycocoevalcap BLEU-1..4 / METEOR / ROUGE-L / CIDEr (optional extra ``eval``).
- `statements`: SCP codes read back from report text, and their precision/recall/F1.
- `labels`: PTB-XL benchmark label sets (superclass, subclass, diagnostic, form, rhythm, all).
- `detection`: macro ROC AUC and its bootstrap confidence interval.

No torch here: evaluation runs on the outputs (texts, scores) of any backend.
"""

from ecgreport.evaluation.detection import bootstrap_auc_ci, macro_auc, per_class_auc
from ecgreport.evaluation.labels import TASKS, LabelTable, load_ptbxl_labels, load_scp_statements
from ecgreport.evaluation.statements import (
    EXTRACTABLE_CODES,
    extract_statements,
    extractor_agreement,
    statement_scores,
)
from ecgreport.evaluation.text_metrics import METRICS, caption_scores, java_available

__all__ = [
    "EXTRACTABLE_CODES",
    "METRICS",
    "TASKS",
    "LabelTable",
    "bootstrap_auc_ci",
    "caption_scores",
    "extract_statements",
    "extractor_agreement",
    "java_available",
    "load_ptbxl_labels",
    "load_scp_statements",
    "macro_auc",
    "per_class_auc",
    "statement_scores",
]
