"""`ecgreport evaluate`: one run that measures a model and its baselines on a dataset
(see `ecgreport.dataset.format`; PTB-XL is one).

What is measured (the dataset's test split by default: `test`, or PTB-XL's fold 10):
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
  Clinical statements and these four tasks need PTB-XL (scp_codes, scp_statements.csv).
- findings called present (a bundle with thresholds, on PTB-XL): precision/recall/F1 of the
  calls against `scp_codes` per label and macro, beside the same measure for the labels read
  by the extractor from the model's generated report.
- on any dataset, for each label set of the bundle with a truth table (`--truth`,
  `truth.py`): zero-shot macro AUC with its bootstrap interval for both scoring methods,
  and the F1 of the label mentions in each system's report text against the truth.

References and system outputs are compared in standard English terms
(`ecgreport.reports.normalise_report`, both sides); the same metrics on the raw references
and raw outputs (only lower-cased, "Edit:" notes cut) are reported as ``*_raw``.

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
from ecgreport.evaluation.labels import load_ptbxl_labels, load_scp_statements, task_labels
from ecgreport.evaluation.statements import (EXTRACTABLE_CODES, extract_statements, read_scp_codes,
                                             report_statement_scores)
from ecgreport.evaluation.text_metrics import caption_scores, java_available
from ecgreport.dataset.format import open_dataset, parse_splits
from ecgreport.evaluation.thresholds import apply_thresholds, call_scores
from ecgreport.evaluation.truth import mention_matrix, mention_scores, read_truth
from ecgreport.reports import clean_report, normalise_report
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
        self.thresholds = self.runner.bundle.thresholds  # None without (see choose_thresholds.py)

    def embed(self, x: np.ndarray) -> np.ndarray:
        return self.runner.encode(x).embedding

    def embed_generate(self, x: np.ndarray, beams: int) -> tuple[np.ndarray, list[str]]:
        enc = self.runner.encode(x)
        return enc.embedding, self.runner.generate(enc, beams=beams)

    def label_names(self, data_dir: Path) -> dict[str, list[str]]:
        return self.runner.bundle.label_sets

    def label_prompts(self) -> dict[str, list[list[str]]]:
        """Per label set, each label's prompts (its description when it has none)."""
        bundle = self.runner.bundle
        return {name: [prompts[label] or [bundle.label_descriptions[name][label]]
                       for label in bundle.label_sets[name]]
                for name, prompts in bundle.label_prompts.items()}

    def zero_shot(self, emb: np.ndarray, method: str, train=None, train_emb=None) -> dict[str, np.ndarray] | None:
        if method == "knn" and self.runner.bundle.retrieval is None:
            return None
        return self.runner.scores(emb, method)


class _CheckpointPredictor:
    def __init__(self, path: Path, device: str):
        import torch

        from ecgreport.training.checkpoint import load_checkpoint

        self.torch = torch
        self.model, self.tokenizer, self.ckpt = load_checkpoint(path)
        self.device = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.fs_hz = self.model.cfg.fs_hz
        self.window = self.model.cfg.window_samples
        self.kind = f"PyTorch checkpoint ({self.device})"
        self.default_scoring = "knn"  # what export-onnx gives a bundle by default
        self.thresholds = None  # thresholds live in a bundle's manifest

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

    def label_prompts(self) -> dict[str, list[list[str]]]:
        raise ValueError("--truth scores the label sets of an exported bundle: export the checkpoint "
                         "(ecgreport export-onnx ... --labels NAME=FILE.csv) and evaluate the bundle")

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
    """split / train_split: values of the dataset's split column, () for its defaults
    (test and train; PTB-XL folds 10 and 1-8). truth: {label set: truth CSV}."""

    split: tuple[str, ...] = ()
    train_split: tuple[str, ...] = ()
    truth: dict = None
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
    """Measure `model_path` (bundle folder or checkpoint) on the dataset `data_dir`."""
    t0 = time.perf_counter()
    ds = open_dataset(Path(data_dir))
    data_dir = ds.root
    split = parse_splits(opts.split) if opts.split else ds.default_split("test")
    train_split = parse_splits(opts.train_split) if opts.train_split else ds.default_split("train")
    truth_files = dict(opts.truth or {})
    if not truth_files and (ds.root / "truth").is_dir():
        truth_files = {p.stem: p for p in sorted((ds.root / "truth").glob("*.csv"))}
    pred = open_predictor(model_path, device)
    if truth_files:
        pred.label_prompts()  # a checkpoint has no label sets of its own: says so before any work
    limit = opts.limit or None
    test = load_split(ds, split, pred.fs_hz, pred.window, limit, progress, require_report=False, role="test")
    ptbxl = ds.is_ptbxl and (data_dir / "scp_statements.csv").is_file()
    result: dict = {
        "ecgreport_version": __version__, "model": str(model_path), "backend": pred.kind, "data": str(data_dir),
        "data_name": ds.name, "is_ptbxl": ptbxl, "split_column": ds.split_column,
        "folds": list(split), "train_split": list(train_split), "n_records": len(test),
    }

    if opts.reports:
        parts = _batched(lambda x: pred.embed_generate(x, opts.beams), test.signals, opts.batch_size, progress,
                         "encoding + generating reports")
        emb = np.concatenate([p[0] for p in parts])
        generated = [r for p in parts for r in p[1]]
    else:
        emb = np.concatenate(_batched(pred.embed, test.signals, opts.batch_size, progress, "encoding"))
        generated = []
    train = load_split(ds, train_split, pred.fs_hz, pred.window, limit, progress, role="train")
    train_emb = np.concatenate(_batched(pred.embed, train.signals, opts.batch_size, progress, "encoding training split"))

    result["zero_shot"] = {}
    if ptbxl:
        _ptbxl_zero_shot(result, pred, data_dir, test, emb, train, train_emb, split, opts)
    truth_tables = {name: read_truth(path, pred.label_names(data_dir).get(name), name)
                    for name, path in truth_files.items()}
    if truth_tables:
        _truth_zero_shot(result, pred, test, emb, train, train_emb, truth_tables, opts)
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
        # Raw: the references as the dataset wrote them (lower case, no "Edit:" note) and the systems'
        # own text, neighbours' reports included; the main numbers: both sides normalised.
        def raw_of(row: int) -> str:
            return clean_report(ds.reports.get(str(train.record_ids[row]), ""))

        raw_systems = {
            "model": generated,
            "model+retrieval consensus": [mbr_select([raw_of(j) for j in row] + ([g] if g else []))
                                          for row, g in zip(neighbours, generated)],
            "retrieval consensus": [mbr_select([raw_of(j) for j in row]) for row in neighbours],
            "retrieval": [raw_of(row[0]) for row in neighbours],
            "most_frequent": [Counter(raw_of(j) for j in range(len(train))).most_common(1)[0][0]] * len(test),
        }
        systems = {name: [normalise_report(h) for h in hyps] for name, hyps in systems.items()}
        has_ref = [i for i, r in enumerate(test.reports) if r]
        refs = [test.reports[i] for i in has_ref]  # load_split normalises them
        raw_refs = [clean_report(ds.reports.get(str(test.record_ids[i]), "")) for i in has_ref]
        result["n_with_reference"] = len(has_ref)
        result["meteor_available"] = java_available()
        if has_ref:
            result["report_generation"] = {
                name: caption_scores(refs, [hyps[i] for i in has_ref]) for name, hyps in systems.items()
            }
            result["report_generation_raw"] = {
                name: caption_scores(raw_refs, [hyps[i] for i in has_ref]) for name, hyps in raw_systems.items()
            }
        if ptbxl:
            scp = read_scp_codes(data_dir / "ptbxl_database.csv")
            codes = [set(scp[int(e)][0]) for e in test.record_ids]
            for key, these, these_refs in (("clinical_statements", systems, refs),
                                           ("clinical_statements_raw", raw_systems, raw_refs)):
                statements = {name: report_statement_scores(codes, hyps) for name, hyps in these.items()}
                statements["reference_reports"] = report_statement_scores([codes[i] for i in has_ref], these_refs)
                for s in statements.values():
                    s.pop("per_code", None)
                result[key] = statements
            result["statement_codes"] = len(EXTRACTABLE_CODES)
        if truth_tables:
            prompts = pred.label_prompts()
            result["report_labels"] = {}
            for name, (ids, classes, y) in truth_tables.items():
                rows = _rows_in(test, ids)
                if not rows[0]:
                    continue
                keep, yy = rows[0], y[rows[1]]
                set_prompts = [prompts[name][pred.label_names(data_dir)[name].index(c)] for c in classes]
                result["report_labels"][name] = {
                    system: mention_scores(yy, mention_matrix([hyps[i] for i in keep], set_prompts))
                    for system, hyps in {**systems, "reference_reports": test.reports}.items()
                }
        result["examples"] = [
            {"record_id": str(test.record_ids[i]), "reference": test.reports[i], "generated": generated[i],
             "retrieved": retrieved[i], "consensus": systems["model+retrieval consensus"][i]} for i in has_ref[:5]
        ]
    if ptbxl and pred.thresholds:
        default_scores = pred.zero_shot(emb, pred.default_scoring, train, train_emb)
        if default_scores is not None:
            index = {int(e): i for i, e in enumerate(test.record_ids)}
            result["calls"] = _call_results(pred.thresholds, default_scores, pred.label_names(data_dir),
                                            load_ptbxl_labels(data_dir), index, [int(f) for f in split],
                                            systems["model"] if opts.reports else None, data_dir)
    if ptbxl:
        result["quoted_literature"] = QUOTED
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def _rows_in(test, ids: list[str]) -> tuple[list[int], list[int]]:
    """(rows of `test`, rows of the truth table) for the test records the table covers."""
    where = {rid: j for j, rid in enumerate(ids)}
    pairs = [(i, where[str(rid)]) for i, rid in enumerate(test.record_ids) if str(rid) in where]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _auc_entry(y: np.ndarray, scores: np.ndarray, classes: list[str], opts: EvalOptions) -> dict | None:
    defined = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not defined:
        return None
    y, scores, names = y[:, defined], scores[:, defined], [classes[j] for j in defined]
    macro, per_class = macro_auc(y, scores, names)
    lo, hi = (bootstrap_auc_ci(y, scores, n_resamples=opts.bootstrap, seed=opts.seed)
              if opts.bootstrap else (np.nan, np.nan))
    return {"macro_auc": macro, "ci95": [lo, hi], "per_class": per_class,
            "n_records": len(y), "n_classes": len(names)}


def _truth_zero_shot(result, pred, test, emb, train, train_emb, truth_tables, opts) -> None:
    """AUC of each truth table's label set, for both scoring methods. Classes without both
    a positive and a negative test record have no AUC and are left out (counted)."""
    result["truth"] = {}
    for method in ("direct", "knn"):
        scores_all = pred.zero_shot(emb, method, train, train_emb)
        if scores_all is None:
            continue
        for name, (ids, classes, y) in truth_tables.items():
            test_rows, truth_rows = _rows_in(test, ids)
            result["truth"][name] = {"n_records": len(test_rows), "n_classes": len(classes),
                                     "classes_with_auc": [c for j, c in enumerate(classes)
                                                          if 0 < y[truth_rows, j].sum() < len(truth_rows)]}
            if not test_rows:
                continue
            names = pred.label_names(None)[name]
            cols = [names.index(c) for c in classes]
            entry = _auc_entry(y[truth_rows], scores_all[name][np.array(test_rows)][:, cols], classes, opts)
            if entry:
                result["zero_shot"].setdefault(method, {})[name] = entry


def _ptbxl_zero_shot(result, pred, data_dir, test, emb, train, train_emb, split, opts) -> None:
    """PTB-XL's superclass, subclass, form and rhythm tasks from scp_codes."""
    table = load_ptbxl_labels(data_dir)
    names = pred.label_names(data_dir)
    folds = [int(f) for f in split]
    index = {int(e): i for i, e in enumerate(test.record_ids)}
    for method in ("direct", "knn"):
        scores_all = pred.zero_shot(emb, method, train, train_emb)
        if scores_all is None:
            continue
        zero_shot = {}
        for task in TASKS:
            if task not in scores_all:
                continue
            ids = [i for i in table.select(task, folds) if i in index]
            present = set(table.classes(task, folds))
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


def _call_results(thresholds: dict, scores_all: dict, names: dict, table, index: dict, folds,
                  generated: list[str] | None, data_dir: Path) -> dict:
    """Per task: P/R/F1 of the bundle's calls (score >= threshold) against `scp_codes`, per
    label and macro (labels with support in these records), and, beside them, of the labels
    the extractor reads in the model's generated report (aggregated like `scp_codes`)."""
    statements = load_scp_statements(Path(data_dir) / "scp_statements.csv")
    read = [task_labels(extract_statements(g), statements) for g in generated] if generated is not None else None
    out = {}
    for task in TASKS:
        if task not in scores_all or task not in thresholds:
            continue
        ids = [i for i in table.select(task, folds) if i in index]
        labels = [n for n in names[task] if n in thresholds[task]]
        if not ids or not labels:
            continue
        rows = np.array([index[i] for i in ids])
        cols = [names[task].index(n) for n in labels]
        truth = table.matrix(task, ids, labels)
        calls = apply_thresholds(np.asarray(scores_all[task])[rows][:, cols], [thresholds[task][n] for n in labels])
        entry = {"n_records": len(ids), "calls": call_scores(truth, calls, labels)}
        if read is not None:
            from_report = np.array([[n in read[r].get(task, ()) for n in labels] for r in rows], dtype=bool)
            entry["generated_report"] = call_scores(truth, from_report, labels)
        out[task] = entry
    return out


def _f(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def to_markdown(res: dict, title: str = "ecgreport evaluation") -> str:
    where = (f"PTB-XL folds {res['folds']}" if res.get("is_ptbxl", True)
             else f"{res.get('data_name', 'the dataset')}, split {', '.join(res['folds'])}")
    lines = [f"## {title}", "", f"Model `{res['model']}` ({res['backend']}); {where}, {res['n_records']} records.", ""]
    for method, zs in res.get("zero_shot", {}).items():
        default = " (the bundle's default)" if method == res.get("zero_shot_default") else ""
        lines += [f"### Zero-shot detection, {method} scoring{default} (macro AUC, 95% bootstrap CI; chance 0.5)", "",
                  "| task | classes | records | macro AUC | 95% CI |", "|---|---|---|---|---|"]
        for task, z in zs.items():
            lines.append(f"| {task} | {z['n_classes']} | {z['n_records']} | {_f(z['macro_auc'])} | "
                         f"{_f(z['ci95'][0])}-{_f(z['ci95'][1])} |")
        for task, z in zs.items():
            if task == "superclass" or task not in TASKS:  # PTB-XL's superclasses and every truth-table set
                lines += ["", f"{task} per class: " + ", ".join(f"{k} {_f(v)}" for k, v in z["per_class"].items())]
        lines.append("")
    if res.get("report_generation"):
        metrics = [m for m in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
                   if m in next(iter(res["report_generation"].values()))]
        lines += [f"### Report generation ({res['n_with_reference']} records with a reference report; pycocoevalcap)", "",
                  "| system | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for name, m in res["report_generation"].items():
            lines.append(f"| {name} | " + " | ".join(_f(m[k]) for k in metrics) + " |")
        lines += ["", "References and outputs in standard English terms (`ecgreport.reports.normalise_report`). "
                  "Against the raw references (as the dataset wrote them, lower-cased; outputs as generated):", "",
                  "| system | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for name, m in res.get("report_generation_raw", {}).items():
            lines.append(f"| {name} | " + " | ".join(_f(m[k]) for k in metrics) + " |")
        if not res.get("meteor_available"):
            lines.append("\nMETEOR skipped: Java is not installed.")
        lines.append("")
    for name, systems in res.get("report_labels", {}).items():
        lines += [f"### Labels of set `{name}` mentioned in the report text vs the truth table", "",
                  "| system | micro P | micro R | micro F1 | macro F1 |", "|---|---|---|---|---|"]
        for system, s in systems.items():
            lines.append(f"| {system} | {_f(s['micro_precision'])} | {_f(s['micro_recall'])} | "
                         f"{_f(s['micro_f1'])} | {_f(s['macro_f1'])} |")
        lines.append("")
    if res.get("clinical_statements"):
        lines += ["### Clinical correctness (SCP statements extracted from the report vs `scp_codes`)", "",
                  "| system | micro P | micro R | micro F1 | macro F1 |", "|---|---|---|---|---|"]
        for name, s in res["clinical_statements"].items():
            lines.append(f"| {name} | {_f(s['micro_precision'])} | {_f(s['micro_recall'])} | "
                         f"{_f(s['micro_f1'])} | {_f(s['macro_f1'])} |")
        lines.append("")
    if res.get("calls"):
        lines += ["### Findings called present (similarity >= the bundle's fold-9 threshold) vs `scp_codes`", "",
                  "Macro over the labels present in these records; beside: the same labels read by the extractor "
                  "in the model's generated report.", "",
                  "| task | labels | calls macro P | R | F1 | generated report macro P | R | F1 |",
                  "|---|---|---|---|---|---|---|---|"]
        for task, c in res["calls"].items():
            m, r = c["calls"], c.get("generated_report") or {}
            lines.append(f"| {task} | {m['n_labels']} | {_f(m['macro_precision'])} | {_f(m['macro_recall'])} | "
                         f"{_f(m['macro_f1'])} | {_f(r.get('macro_precision'))} | {_f(r.get('macro_recall'))} | "
                         f"{_f(r.get('macro_f1'))} |")
        lines.append("")
    return "\n".join(lines) + "\n"
