"""How much each lead set costs the model: zero-shot AUC and statement F1 with leads removed.

Reads PTB-XL's test fold (fold 10 by default) once, then for each lead set below zero-fills
the other leads exactly as ``ecgreport batch`` does for a record without them (or derives
them, for the rows marked so, as ``batch`` does since limb leads are derived), and runs
the bundle as ``batch`` runs it: the encoder, the zero-shot scores of both scoring methods,
and the report (``ModelRunner.write_reports``: the bundle's report method). Metrics are the
ones ``ecgreport evaluate`` uses (:func:`~ecgreport.evaluation.detection.macro_auc` per
task, :func:`~ecgreport.evaluation.statements.report_statement_scores` on the report).
PTB-XL labels (``scp_codes``) are read here only, for scoring.

    nice python scripts/lead_removal.py --data /work/data/ptb-xl --doc docs/signal-checks.md

Writes the table into the ``lead-removal`` block of the doc and every number to
``--json`` (default: docs/signal-checks-lead-removal.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_blocks import replace_block  # noqa: E402

from ecgreport.leads import STANDARD_LEADS  # noqa: E402

LIMB = STANDARD_LEADS[:6]
CHEST = STANDARD_LEADS[6:]
# (row name, leads kept, derive limb leads from the kept ones)
LEAD_SETS = [
    ("all 12 leads (baseline)", STANDARD_LEADS, False),
    *[(f"11 leads: {v} missing", tuple(x for x in STANDARD_LEADS if x != v), False) for v in CHEST],
    ("6 chest leads V1-V6", CHEST, False),
    ("6 limb leads", LIMB, False),
    ("I, II, III (aVR, aVL, aVF zero-filled)", ("I", "II", "III"), False),
    ("I, II, III (aVR, aVL, aVF derived, as batch does)", ("I", "II", "III"), True),
    ("I, II + V1-V6 (the 8 independent leads; 4 limb leads derived)", ("I", "II", *CHEST), True),
    ("lead II only", ("II",), False),
]
TASKS = ("superclass", "subclass", "form", "rhythm")


def read_fold(data_dir: Path, folds: set[int], limit: int) -> tuple[list[int], np.ndarray]:
    """Fold records at 100 Hz as ``(ecg_ids, (N, 12, 1000) mV)`` (PTB-XL's 10 s records)."""
    from ecgreport.dataset.format import open_dataset, record_paths
    from ecgreport.records.read import read_record

    ds = open_dataset(data_dir)
    rows = ds.select([str(f) for f in sorted(folds)], require_report=False)
    if limit:
        rows = rows[:limit]
    ids, signals = [], []
    for row in rows:
        rec = read_record(record_paths(ds, row, 100.0)[0])
        if rec.signal_mv.shape[1] < 1000:
            continue
        ids.append(int(row.record_id))
        signals.append(rec.signal_mv[:, :1000])
    return ids, np.stack(signals)


def with_leads(signal_mv: np.ndarray, kept: tuple[str, ...], derive: bool) -> np.ndarray:
    """``(N, 12, n)`` mV with every lead not in ``kept`` zeroed (or derived)."""
    from ecgreport.signal.limb import derive_limb_leads

    mask = np.array([lead in kept for lead in STANDARD_LEADS])
    out = signal_mv * mask[None, :, None]
    if derive:
        for x in out:
            derive_limb_leads(x, mask.copy())
    return out.astype(np.float32)


def evaluate_set(runner, signals_mv: np.ndarray, ids: list[int], table, scp, names) -> dict:
    from ecgreport.evaluation.detection import macro_auc
    from ecgreport.evaluation.statements import report_statement_scores
    from ecgreport.signal.preprocess import model_window

    x = np.stack([model_window(s, 100.0, runner.bundle.fs_hz, runner.bundle.window_samples)
                  for s in signals_mv])
    emb, reports = [], []
    for i in range(0, len(x), 128):
        enc = runner.encode(x[i:i + 128])
        e = np.asarray(enc.embedding, np.float32)
        emb.append(e)
        reports += [r["report"] for r in runner.write_reports(enc, e)]
    emb = np.concatenate(emb)
    index = {e: i for i, e in enumerate(ids)}
    out: dict = {"auc": {}}
    for method in ("direct", "knn"):
        scores = runner.scores(emb, method)
        out["auc"][method] = {}
        for task in TASKS:
            keep = [i for i in table.select(task, (10,)) if i in index]
            present = set(table.classes(task, (10,)))
            cols = [j for j, n in enumerate(names[task]) if n in present]
            y = table.matrix(task, keep, [names[task][j] for j in cols])
            s = scores[task][np.array([index[i] for i in keep])][:, cols]
            out["auc"][method][task] = macro_auc(y, s, [names[task][j] for j in cols])[0]
    st = report_statement_scores([set(scp[e][0]) for e in ids], reports)
    out["statement_micro_f1"], out["statement_macro_f1"] = st["micro_f1"], st["macro_f1"]
    return out


def markdown(results: list[dict], meta: dict) -> str:
    default = meta["default_scoring"]
    other = "knn" if default == "direct" else "direct"
    lines = [
        f"Command: `{meta['command']}` ({meta['when']}, {meta['seconds']:.0f} s). "
        f"PTB-XL (Wagner et al. 2020) fold {meta['folds']}, {meta['n_records']} records at "
        f"100 Hz; model `{meta['model']}`. Zero-shot macro AUC with the bundle's scoring "
        f"(`{default}`) and with `{other}` scoring; statement F1 of the report that `batch` "
        "writes, against `scp_codes`.",
        "",
        f"| leads given to the model | leads | superclass AUC ({default}) | subclass | form | "
        f"rhythm | superclass AUC ({other}) | statement micro F1 | statement macro F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        a, d = r["auc"][default], r["auc"][other]
        lines.append(
            f"| {r['name']} | {r['n_leads']} | {a['superclass']:.3f} | {a['subclass']:.3f} | "
            f"{a['form']:.3f} | {a['rhythm']:.3f} | {d['superclass']:.3f} | "
            f"{r['statement_micro_f1']:.3f} | {r['statement_macro_f1']:.3f} |")
    base = results[0]

    def kept(r: dict) -> str:
        """Share of the baseline's superclass AUC above chance, and of its statement F1."""
        # A baseline at chance (or no statement F1) leaves nothing to keep a share of: say so
        # rather than divide by zero (a handful of records can score exactly 0.5).
        above = base["auc"][default]["superclass"] - 0.5
        auc = f"{(r['auc'][default]['superclass'] - 0.5) / above:.0%}" if above > 0 else "n/a"
        f1 = f"{r['statement_micro_f1'] / base['statement_micro_f1']:.0%}" if base["statement_micro_f1"] > 0 else "n/a"
        return f"{auc} of the AUC above chance and {f1} of the statement F1"

    by_leads: dict[int, list[dict]] = {}
    for r in results[1:]:
        by_leads.setdefault(r["n_leads"], []).append(r)
    lines += ["", "What each lead count keeps of the baseline (superclass, "
              f"{default} scoring; worst row of that count): "
              + "; ".join(f"{n} lead{'s' if n > 1 else ''}: {kept(min(rows, key=lambda r: r['auc'][default]['superclass']))}"
                          for n, rows in sorted(by_leads.items(), reverse=True)) + "."]
    lines += ["", f"Change from the baseline ({default} scoring; statement micro F1):", "",
              "| leads | superclass AUC | subclass | form | rhythm | statement micro F1 |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in results[1:]:
        diff = [r["auc"][default][t] - base["auc"][default][t] for t in TASKS]
        lines.append(f"| {r['name']} | " + " | ".join(f"{v:+.3f}" for v in diff)
                     + f" | {r['statement_micro_f1'] - base['statement_micro_f1']:+.3f} |")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path relative to the repository when inside it (the doc is read from there)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        return str(Path(path).resolve().relative_to(repo))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="PTB-XL folder (needed unless --from-json)")
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: packaged)")
    parser.add_argument("--limit", type=int, default=0, help="first N records only (0: all)")
    parser.add_argument("--doc", type=Path, default=None, help="Markdown file to update")
    parser.add_argument("--json", type=Path, default=Path("docs/signal-checks-lead-removal.json"))
    parser.add_argument("--from-json", action="store_true",
                        help="only rewrite the doc's table from --json (no model run)")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.json.read_text())
        if args.doc:
            replace_block(args.doc, "lead-removal", markdown(saved["results"], saved["meta"]))
        print(markdown(saved["results"], saved["meta"]))
        return 0
    if args.data is None:
        parser.error("--data is required (or --from-json)")

    from ecgreport.evaluation.labels import load_ptbxl_labels
    from ecgreport.evaluation.statements import read_scp_codes
    from ecgreport.onnx.runtime import ModelRunner, default_bundle_path, load_bundle

    started = time.perf_counter()
    model = args.model or default_bundle_path()
    runner = ModelRunner(load_bundle(model), device="cpu")
    ids, signals = read_fold(args.data, {10}, args.limit)
    print(f"read {len(ids)} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    table = load_ptbxl_labels(args.data)
    scp = read_scp_codes(args.data / "ptbxl_database.csv")
    names = runner.bundle.label_sets
    results = []
    for name, kept, derive in LEAD_SETS:
        t0 = time.perf_counter()
        res = evaluate_set(runner, with_leads(signals, kept, derive), ids, table, scp, names)
        res.update(name=name, leads=list(kept), derived=derive,
                   n_leads=6 + len(set(kept) - set(LIMB)) if derive else len(kept))
        results.append(res)
        print(f"{name}: superclass AUC {res['auc'][runner.bundle.scoring]['superclass']:.3f}, "
              f"statement micro F1 {res['statement_micro_f1']:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    meta = {"command": "python scripts/lead_removal.py " + " ".join(argv or sys.argv[1:]),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": time.perf_counter() - started, "folds": 10, "n_records": len(ids),
            "model": _shown(model), "default_scoring": runner.bundle.scoring}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    if args.doc:
        replace_block(args.doc, "lead-removal", markdown(results, meta))
    print(markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
