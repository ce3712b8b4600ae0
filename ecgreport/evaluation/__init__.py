"""Evaluation: report text metrics, clinical statement agreement, PTB-XL labels, detection AUC.

- `text_metrics`: pycocoevalcap BLEU-1..4 / METEOR / ROUGE-L / CIDEr (optional extra ``eval``).
- `statements`: SCP codes read back from report text, and their precision/recall/F1.
- `labels`: PTB-XL benchmark label sets (superclass, subclass, diagnostic, form, rhythm, all).
- `detection`: macro ROC AUC and its bootstrap confidence interval.
- `pseudo`: fold-9 pseudo-labels read by the extractor in the reports (for choices, no scp_codes).
- `thresholds`: decision thresholds chosen on those; `prompt_mining`: the reports' wording for prompts.
- `likelihood`: zero-shot scores from the decoder's likelihood of a label's prompts (runs on a bundle).
- `decoding`: report decoding strategies (greedy, beam, consensus, MBR) and their text scores.

No torch here: evaluation runs on the outputs (texts, scores) of any backend. The names below
are imported on first use, so ``python -m ecgreport.evaluation.statements`` runs cleanly and
importing the package costs nothing.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "bootstrap_auc_ci": "detection",
    "macro_auc": "detection",
    "per_class_auc": "detection",
    "TASKS": "labels",
    "LabelTable": "labels",
    "load_ptbxl_labels": "labels",
    "load_scp_statements": "labels",
    "EXTRACTABLE_CODES": "statements",
    "extract_statements": "statements",
    "extractor_agreement": "statements",
    "report_statement_scores": "statements",
    "statement_scores": "statements",
    "METRICS": "text_metrics",
    "caption_scores": "text_metrics",
    "java_available": "text_metrics",
    "pseudo_labels": "pseudo",
    "LikelihoodScorer": "likelihood",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
