"""Choose a bundle's per-label decision thresholds on PTB-XL fold 9 and write them into its manifest.

No ``scp_codes`` are read: the pseudo-label of a fold-9 record is what the statement extractor
reads in the record's own English report (see `ecgreport.evaluation.thresholds` for the rule
and the fallback). The similarities are the bundle's own default scoring method, so the
thresholds apply to exactly what ``ecgreport batch`` computes.

    python scripts/choose_thresholds.py --data /work/data/ptb-xl --bundle export

The manifest gets one new key, ``thresholds``; its ``checksum`` is recomputed and nothing
else in the bundle changes. ``--dry-run`` prints the table without writing. A summary table
goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ecgreport.evaluation.labels import load_scp_statements
from ecgreport.evaluation.pseudo import pseudo_labels
from ecgreport.evaluation.statements import read_reports
from ecgreport.evaluation.thresholds import FALLBACK_QUANTILE, MIN_POSITIVES, choose_thresholds
from ecgreport.onnx.runtime import MANIFEST, ModelRunner, load_bundle, manifest_checksum
from ecgreport.training.data import load_split

FOLDS = [9]


def compute(data: Path, bundle_path: Path, batch_size: int = 256) -> dict:
    bundle = load_bundle(bundle_path)
    runner = ModelRunner(bundle, device="cpu")
    split = load_split(data, set(FOLDS), bundle.fs_hz, bundle.window_samples, require_report=True)
    # Raw report text (the extractor reads both vocabularies; docs/report-text.md).
    raw = read_reports(data / "reports_en.csv")
    reports = [raw[int(i)] for i in split.record_ids]
    print(f"fold {FOLDS}: {len(reports)} records with an English report; encoding", file=sys.stderr)
    emb = np.concatenate([runner.encode(split.signals[i:i + batch_size]).embedding
                          for i in range(0, len(split.signals), batch_size)])
    method = bundle.scoring
    scores = runner.scores(emb.astype(np.float32), method)
    label_sets = bundle.label_sets
    pseudo = pseudo_labels(reports, load_scp_statements(data / "scp_statements.csv"), label_sets)
    return {
        "method": method,
        "folds": FOLDS,
        "n_records": len(reports),
        "rule": (f"per label, the similarity threshold maximising F1 against the statements the extractor "
                 f"reads in fold {FOLDS[0]}'s own reports (no scp_codes); labels with fewer than "
                 f"{MIN_POSITIVES} such records: the {FALLBACK_QUANTILE} quantile of their fold-{FOLDS[0]} "
                 f"similarities (scripts/choose_thresholds.py)"),
        "labels": choose_thresholds({k: scores[k] for k in label_sets}, pseudo, label_sets),
    }


def write_manifest(bundle_path: Path, thresholds: dict) -> None:
    path = Path(bundle_path) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["thresholds"] = thresholds
    manifest["checksum"] = manifest_checksum(manifest)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="PTB-XL folder")
    ap.add_argument("--bundle", type=Path, default=Path("export"), help="ONNX bundle folder (default: export)")
    ap.add_argument("--dry-run", action="store_true", help="print the thresholds, do not write the manifest")
    args = ap.parse_args(argv)
    res = compute(args.data, args.bundle)
    print("| set | label | threshold | source | fold-9 pseudo-positives | F1 vs pseudo-labels |")
    print("|---|---|---|---|---|---|")
    for name, labels in res["labels"].items():
        for label, t in labels.items():
            f1 = "" if t["f1_pseudo"] is None else f"{t['f1_pseudo']:.3f}"
            print(f"| {name} | {label} | {t['threshold']:.4f} | {t['source']} | {t['n_pseudo_positive']} | {f1} |")
    if not args.dry_run:
        write_manifest(args.bundle, res)
        print(f"wrote thresholds into {args.bundle / MANIFEST}", file=sys.stderr)


if __name__ == "__main__":
    main()
