"""`ecgreport evaluate`: one run that measures a model and its baselines on PTB-XL.

What is measured (fold 10 by default):
- report generation vs the English references: BLEU-1..4, METEOR, ROUGE-L, CIDEr
  (pycocoevalcap), for the model's decoder, the decoder's report chosen together with the
  reports of the k nearest training ECGs by consensus (MBR), the neighbours' consensus
  alone, the retrieval baseline (report of the nearest training ECG in the model's
  embedding space) and the most frequent training report;
- clinical correctness: SCP statements read back from each report by the deterministic
  extractor, against the record's `scp_codes` (micro/macro P/R/F1), for the same three,
  plus the extractor on the reference reports themselves (the ceiling of this measure);
- zero-shot detection: macro AUC with a 95% bootstrap interval for the superclass,
  subclass, form and rhythm tasks, for both scoring methods ('direct': ECG embedding vs
  prompt embedding; 'knn': prompt vs the reports of the 25 nearest training ECGs); chance 0.5.

Works on an ONNX bundle (onnxruntime, no torch) or on a training checkpoint (torch).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgreport import __version__
from ecgreport.errors import UsageError
from ecgreport.evaluation.detection import bootstrap_auc_ci, macro_auc
from ecgreport.evaluation.labels import load_ptbxl_labels
from ecgreport.evaluation.statements import EXTRACTABLE_CODES, read_scp_codes, report_statement_scores
from ecgreport.evaluation.text_metrics import caption_scores, java_available
from ecgreport.training.data import load_split

log = logging.getLogger(__name__)

TASKS = ("superclass", "subclass", "form", "rhythm")

# Quoted from ../shared/docs/anchors.md (published numbers; never mixed with measured ones).
QUOTED = {
    "zero-shot superclass macro AUC": [("MERL (ICML 2024)", 0.742), ("D-BETA (ICML 2025)", 0.762), ("TAMER", 0.765)],
    "supervised superclass macro AUC": [("Strodthoff et al. 2021", 0.930)],
    "METEOR": [("Qiu et al. 2023 re-run by Bleich et al.", 0.2451), ("Bleich et al. 2024", 0.5553)],
}


class _BundlePredictor:
    def __init__(self, path: Path, device: str):
        from ecgreport.onnx.runtime import ModelRunner, load_bundle

        self.runner = ModelRunner(load_bundle(path), device=device)
        self.fs_hz = self.runner.bundle.fs_hz
        self.window = self.runner.bundle.window_samples
        self.kind = f"ONNX bundle ({self.runner.provider})"
        self.default_scoring = self.runner.bundle.scoring

    def embed(self, x: np.ndarray) -> np.ndarray:
        return self.runner.encode(x).embedding

    def embed_generate(self, x: np.ndarray, beams: int) -> tuple[np.ndarray, list[str]]:
        enc = self.runner.encode(x)
        return enc.embedding, self.runner.generate(enc, beams=beams)

    def label_names(self, data_dir: Path) -> dict[str, list[str]]:
        return self.runner.bundle.label_sets

    def zero_shot(self, emb: np.ndarray, method: str, train=None, train_emb=None) -> dict[str, np.ndarray] | None:
        if method == "knn" and self.runner.bundle.retrieval is None:
            return None
        return self.runner.scores(emb, method)


class _CheckpointPredictor:
    def __init__(self, path: Path, device: str):
        import torch

        from ecgreport.onnx.export import load_checkpoint

        self.torch = torch
        self.model, self.tokenizer, self.ckpt = load_checkpoint(path)
        self.device = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.fs_hz = self.model.cfg.fs_hz
        self.window = self.model.cfg.window_samples
        self.kind = f"PyTorch checkpoint ({self.device})"
        self.default_scoring = "knn"  # what export-onnx gives a bundle by default

    def embed(self, x: np.ndarray) -> np.ndarray:
        from ecgreport.model.model import embed_signals

        return embed_signals(self.model, x, self.device)

    def embed_generate(self, x: np.ndarray, beams: int) -> tuple[np.ndarray, list[str]]:
        from ecgreport.model.generate import greedy_generate

        if beams > 1:
            raise UsageError("beam search runs on an exported bundle: export the checkpoint "
                             "(ecgreport export-onnx) and evaluate that, or use --beams 1")
        xt = self.torch.from_numpy(x).to(self.device)
        ids, emb = greedy_generate(self.model, xt, self.tokenizer.BOS, self.tokenizer.EOS,
                                   self.model.cfg.max_report_tokens, return_embedding=True)
        return emb.float().cpu().numpy(), [self.tokenizer.decode(i) for i in ids]

    def label_names(self, data_dir: Path) -> dict[str, list[str]]:
        from ecgreport.model.text_encoder import TextEncoder
        from ecgreport.prompts import build_label_sets, ensemble_embeddings

        self.text = TextEncoder(self.ckpt.get("text_model"))
        sets = build_label_sets(Path(data_dir) / "scp_statements.csv")
        self.label_emb = {k: ensemble_embeddings(self.text.embed, v) for k, v in sets.items()}
        return {k: [l.name for l in v] for k, v in sets.items()}

    def zero_shot(self, emb: np.ndarray, method: str, train=None, train_emb=None) -> dict[str, np.ndarray] | None:
        from ecgreport.onnx.retrieval import Retrieval

        if method == "direct":
            return {k: emb @ m.T for k, m in self.label_emb.items()}
        if train is None:
            return None
        r = Retrieval(train_emb, train.report_ids, self.text.embed(train.unique_reports), train.unique_reports)
        return {k: r.label_scores(emb, r.report_embeddings @ m.T) for k, m in self.label_emb.items()}


def open_predictor(model: Path, device: str = "auto"):
    model = Path(model)
    if model.is_dir():
        return _BundlePredictor(model, device)
    return _CheckpointPredictor(model, device)


@dataclass
class EvalOptions:
    folds: tuple[int, ...] = (10,)
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    limit: int = 0
    beams: int = 1
    bootstrap: int = 1000
    seed: int = 0
    batch_size: int = 256
    reports: bool = True
    k: int = 25


def _batched(fn, x: np.ndarray, batch_size: int, progress=None, label: str = ""):
    task = progress.add_task(label, total=len(x)) if progress else None
    outs = []
    for i in range(0, len(x), batch_size):
        outs.append(fn(x[i : i + batch_size]))
        if progress:
            progress.advance(task, len(outs[-1][0]) if isinstance(outs[-1], tuple) else len(outs[-1]))
    if progress:
        progress.remove_task(task)
    return outs


def evaluate(model_path: Path, data_dir: Path, opts: EvalOptions, device: str = "auto", progress=None) -> dict:
    """Measure `model_path` (bundle folder or checkpoint) on PTB-XL `data_dir`."""
    t0 = time.perf_counter()
    data_dir = Path(data_dir)
    pred = open_predictor(model_path, device)
    limit = opts.limit or None
    test = load_split(data_dir, set(opts.folds), pred.fs_hz, pred.window, limit, progress, require_report=False)
    result: dict = {
        "ecgreport_version": __version__, "model": str(model_path), "backend": pred.kind, "data": str(data_dir),
        "folds": list(opts.folds), "n_records": len(test),
    }

    if opts.reports:
        parts = _batched(lambda x: pred.embed_generate(x, opts.beams), test.signals, opts.batch_size, progress,
                         "encoding + generating reports")
        emb = np.concatenate([p[0] for p in parts])
        generated = [r for p in parts for r in p[1]]
    else:
        emb = np.concatenate(_batched(pred.embed, test.signals, opts.batch_size, progress, "encoding"))
        generated = []
    train = load_split(data_dir, set(opts.train_folds), pred.fs_hz, pred.window, limit, progress)
    train_emb = np.concatenate(_batched(pred.embed, train.signals, opts.batch_size, progress, "encoding training folds"))

    # Zero-shot detection, with both scoring methods.
    table = load_ptbxl_labels(data_dir)
    names = pred.label_names(data_dir)
    index = {int(e): i for i, e in enumerate(test.ecg_ids)}
    result["zero_shot"] = {}
    for method in ("direct", "knn"):
        scores_all = pred.zero_shot(emb, method, train, train_emb)
        if scores_all is None:
            continue
        zero_shot = {}
        for task in TASKS:
            if task not in scores_all:
                continue
            ids = [i for i in table.select(task, opts.folds) if i in index]
            present = set(table.classes(task, opts.folds))
            cols = [j for j, n in enumerate(names[task]) if n in present]
            if not ids or not cols:
                continue
            y = table.matrix(task, ids, [names[task][j] for j in cols])
            scores = scores_all[task][np.array([index[i] for i in ids])][:, cols]
            macro, per_class = macro_auc(y, scores, [names[task][j] for j in cols])
            lo, hi = (bootstrap_auc_ci(y, scores, n_resamples=opts.bootstrap, seed=opts.seed)
                      if opts.bootstrap else (np.nan, np.nan))
            zero_shot[task] = {"macro_auc": macro, "ci95": [lo, hi], "per_class": per_class,
                               "n_records": len(ids), "n_classes": len(cols)}
        result["zero_shot"][method] = zero_shot
    result["zero_shot_default"] = pred.default_scoring
    result["chance_auc"] = 0.5

    if opts.reports:
        from ecgreport.onnx.retrieval import Retrieval, mbr_select

        r = Retrieval(train_emb, train.report_ids, np.zeros((len(train.unique_reports), 1), np.float32),
                      train.unique_reports)
        neighbours = np.concatenate([r.neighbours(emb[i : i + 1024], opts.k) for i in range(0, len(emb), 1024)])
        retrieved = [train.unique_reports[train.report_ids[row[0]]] for row in neighbours]
        pools = [[train.unique_reports[j] for j in train.report_ids[row]] for row in neighbours]
        most_frequent = Counter(train.reports).most_common(1)[0][0]
        systems = {
            "model": generated,
            "model+retrieval consensus": [mbr_select(p + [g]) if g else mbr_select(p) for p, g in zip(pools, generated)],
            "retrieval consensus": [mbr_select(p) for p in pools],
            "retrieval": retrieved,
            "most_frequent": [most_frequent] * len(test),
        }
        has_ref = [i for i, r in enumerate(test.reports) if r]
        refs = [test.reports[i] for i in has_ref]
        result["n_with_reference"] = len(has_ref)
        result["meteor_available"] = java_available()
        result["report_generation"] = {
            name: caption_scores(refs, [hyps[i] for i in has_ref]) for name, hyps in systems.items()
        }
        scp = read_scp_codes(data_dir / "ptbxl_database.csv")
        codes = [set(scp[int(e)][0]) for e in test.ecg_ids]
        statements = {name: report_statement_scores(codes, hyps) for name, hyps in systems.items()}
        statements["reference_reports"] = report_statement_scores([codes[i] for i in has_ref], refs)
        for s in statements.values():
            s.pop("per_code", None)
        result["clinical_statements"] = statements
        result["statement_codes"] = len(EXTRACTABLE_CODES)
        result["examples"] = [
            {"ecg_id": int(test.ecg_ids[i]), "reference": test.reports[i], "generated": generated[i],
             "retrieved": retrieved[i], "consensus": systems["model+retrieval consensus"][i]} for i in has_ref[:5]
        ]
    result["quoted_literature"] = QUOTED
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def _f(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def to_markdown(res: dict, title: str = "ecgreport evaluation") -> str:
    lines = [f"## {title}", "",
             f"Model `{res['model']}` ({res['backend']}); PTB-XL folds {res['folds']}, {res['n_records']} records.", ""]
    for method, zs in res.get("zero_shot", {}).items():
        default = " (the bundle's default)" if method == res.get("zero_shot_default") else ""
        lines += [f"### Zero-shot detection, {method} scoring{default} (macro AUC, 95% bootstrap CI; chance 0.5)", "",
                  "| task | classes | records | macro AUC | 95% CI |", "|---|---|---|---|---|"]
        for task, z in zs.items():
            lines.append(f"| {task} | {z['n_classes']} | {z['n_records']} | {_f(z['macro_auc'])} | "
                         f"{_f(z['ci95'][0])}-{_f(z['ci95'][1])} |")
        sup = zs.get("superclass")
        if sup:
            lines += ["", "Superclass per class: " + ", ".join(f"{k} {_f(v)}" for k, v in sup["per_class"].items())]
        lines.append("")
    if res.get("report_generation"):
        metrics = [m for m in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
                   if m in next(iter(res["report_generation"].values()))]
        lines += [f"### Report generation ({res['n_with_reference']} records with an English reference; pycocoevalcap)", "",
                  "| system | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for name, m in res["report_generation"].items():
            lines.append(f"| {name} | " + " | ".join(_f(m[k]) for k in metrics) + " |")
        if not res.get("meteor_available"):
            lines.append("\nMETEOR skipped: Java is not installed.")
        lines += ["", "### Clinical correctness (SCP statements extracted from the report vs `scp_codes`)", "",
                  "| system | micro P | micro R | micro F1 | macro F1 |", "|---|---|---|---|---|"]
        for name, s in res["clinical_statements"].items():
            lines.append(f"| {name} | {_f(s['micro_precision'])} | {_f(s['micro_recall'])} | "
                         f"{_f(s['micro_f1'])} | {_f(s['macro_f1'])} |")
        lines.append("")
    return "\n".join(lines) + "\n"
