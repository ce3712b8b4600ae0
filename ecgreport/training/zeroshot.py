"""PTB-XL's fold-9 zero-shot AUC shown during training. Labels are read for display only:
they never reach the loss or the checkpoint choice. Other datasets show none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgreport.evaluation.detection import macro_auc
from ecgreport.evaluation.labels import load_ptbxl_labels
from ecgreport.model.model import embed_signals
from ecgreport.prompts import build_label_sets, ensemble_embeddings


def superclass_auc_fn(data_dir: Path):
    """-> fn(model, val_set, text_encoder, device) -> {'val_zeroshot_superclass_auc': float},
    or None when `data_dir` is not PTB-XL (no ptbxl_database.csv with scp_codes and no
    scp_statements.csv)."""
    data_dir = Path(data_dir)
    if not ((data_dir / "ptbxl_database.csv").is_file() and (data_dir / "scp_statements.csv").is_file()):
        return None
    state: dict = {}

    def fn(model, val_set, text, device) -> dict:
        if "table" not in state:
            state["table"] = load_ptbxl_labels(data_dir)
            labels = build_label_sets(data_dir / "scp_statements.csv")["superclass"]
            state["classes"] = [label.name for label in labels]
            state["label_emb"] = ensemble_embeddings(text.embed, labels)
        table, classes = state["table"], state["classes"]
        keep = np.array([len(table.labels["superclass"].get(int(i), ())) > 0 for i in val_set.record_ids])
        ids = [int(i) for i in val_set.record_ids[keep]]
        y = table.matrix("superclass", ids, classes)
        scores = embed_signals(model, val_set.signals[keep], device) @ state["label_emb"].T
        macro, _ = macro_auc(y, scores)
        return {"val_zeroshot_superclass_auc": float(macro)}

    return fn
