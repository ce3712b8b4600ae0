"""Write docs/results.md from `ecgreport evaluate --json` outputs. Nothing here is typed by hand:
every number is read from a JSON file that `ecgreport evaluate` wrote, and each section names
the command that made it.

    python scripts/make_results.py --bundle-eval runs/export-eval.json \\
        --ablation runs/r2 --levers runs/levers.md --out docs/results.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgreport.evaluation.run import to_markdown  # noqa: E402

VARIANTS = {
    "short": "the first model's recipe on normalised text: 14 epochs, patience 4",
    "long": "the same, with this table's budget: 20 epochs, patience 5",
    "aug": "+ ECG augmentations (--augment 0.5)",
}


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _train_command(run: Path, cfg: dict, mc: dict) -> str:
    parts = [f"ecgreport train --data PTBXL --out {run} --epochs {cfg['epochs']} --patience {cfg['patience']}",
             f"--augment {cfg.get('augment', 0):g}"]
    if tuple(mc.get("resnet_channels", ())) != (32, 64, 128, 256):
        parts.append("--channels " + ",".join(str(c) for c in mc["resnet_channels"]))
    return " ".join(parts)


def _parameters(checkpoint: Path) -> int:
    """Weights of the model in a training checkpoint (encoder, heads and decoder)."""
    from ecgreport.training.checkpoint import read_checkpoint

    return sum(int(v.numel()) for k, v in read_checkpoint(checkpoint)["model"].items() if "running_" not in k and "num_batches" not in k)


def ablation_table(root: Path) -> list[str]:
    """One row per run folder of scripts/ablation.sh that has its eval10.json."""
    lines = ["| row | epochs run (best) | sec/epoch | parameters | best val loss | superclass | subclass | form "
             "| rhythm | METEOR | statement micro F1 | statement macro F1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for name, what in VARIANTS.items():
        run = root / name
        if not (run / "eval10.json").is_file():
            continue
        res = json.loads((run / "eval10.json").read_text())
        metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
        cfg = json.loads((run / "config.json").read_text())
        mc = json.loads((run / "model_config.json").read_text())
        best = min(metrics, key=lambda m: m["val_loss"])
        zs = res["zero_shot"]["direct"]
        rg = res.get("report_generation", {}).get("model", {})
        st = res.get("clinical_statements", {}).get("model", {})
        sec = sum(m["epoch_seconds"] for m in metrics) / max(1, len(metrics))
        lines.append(
            f"| {name}: {what} | {len(metrics)} ({best['epoch']}) | {sec:.0f} | {_parameters(run / 'best.pt'):,} "
            f"| {best['val_loss']:.3f} | " + " | ".join(_f(zs.get(t, {}).get("macro_auc")) for t in ("superclass", "subclass", "form", "rhythm"))
            + f" | {_f(rg.get('METEOR'))} | {_f(st.get('micro_f1'))} | {_f(st.get('macro_f1'))} |")
        commands.append(f"- {name}: `{_train_command(run, cfg, mc)}`, then "
                        f"`ecgreport evaluate --data PTBXL --model {run}/best.pt --json {run}/eval10.json`")
    return lines + ["", "Zero-shot columns: direct scoring, macro AUC. Every row: seed 0, CE + OT + paired InfoNCE, "
                    "the normalised report text, checkpoint chosen by validation loss (fold 9, no labels). "
                    "Seconds per epoch were measured on a shared 2-core CPU and vary with other work.", "",
                    "Commands (`scripts/ablation.sh PTBXL` runs them all, one at a time, resumable):", ""] + commands


def comparison_table(new: dict, old: dict) -> list[str]:
    """The shipped bundle against the one it replaced, on the fold-10 numbers of issue #14
    (the bundle is replaced only when it is better on all of them)."""
    def nums(res: dict) -> dict:
        z = res["zero_shot"][res.get("zero_shot_default") or "direct"]
        rg, st = res["report_generation"]["model"], res["clinical_statements"]["model"]
        out = {f"{t} macro AUC": z[t]["macro_auc"] for t in ("superclass", "subclass", "form", "rhythm") if t in z}
        out.update({"METEOR (normalised references)": rg["METEOR"], "statement micro F1": st["micro_f1"],
                    "statement macro F1": st["macro_f1"]})
        return out
    a, b = nums(new), nums(old)
    lines = ["| fold 10 | previous bundle | shipped bundle | better |", "|---|---|---|---|"]
    for k in a:
        if k in b:
            lines.append(f"| {k} | {b[k]:.3f} | {a[k]:.3f} | {'yes' if a[k] > b[k] else 'NO'} |")
    return lines


def _kept_block(out: Path, start: str, end: str) -> list[str]:
    """A block another script wrote into `out` (or an earlier round's), kept as it is."""
    text = out.read_text() if out.is_file() else ""
    if start not in text or end not in text:
        return []
    return [start + text.split(start, 1)[1].split(end, 1)[0] + end, ""]


def _foreign_block(out: Path) -> list[str]:
    """The "Foreign data: LUDB" block that scripts/ludb_truth.py --doc wrote into `out`, kept
    as it is (its numbers come from that script; LUDB is not needed here)."""
    return _kept_block(out, "<!-- foreign-ludb:start", "<!-- foreign-ludb:end -->")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle-eval", type=Path, help="evaluate --json output for the shipped bundle")
    ap.add_argument("--bundle-command", default="ecgreport evaluate --data PTBXL --json runs/export-eval.json",
                    help="the command that produced --bundle-eval, quoted in the document")
    ap.add_argument("--ablation", type=Path, help="folder of ablation runs (scripts/ablation.sh)")
    ap.add_argument("--previous-eval", type=Path, help="evaluate --json of the bundle the shipped one replaced")
    ap.add_argument("--levers", type=Path, help="Markdown of scripts/choose_scoring.py (fold-9 scoring and decoding levers)")
    ap.add_argument("--out", type=Path, default=Path("docs/results.md"))
    ap.add_argument("--readme", type=Path, help="also rewrite the summary between the results markers of this README")
    args = ap.parse_args()
    parts = ["# Results", "",
             "Generated by `scripts/make_results.py` from `ecgreport evaluate` JSON outputs; do not edit by hand.",
             "PTB-XL (Wagner et al. 2020, CC BY 4.0), test fold 10; no diagnostic label is used in training.", ""]
    if args.bundle_eval:
        res = json.loads(args.bundle_eval.read_text())
        parts += [f"Command: `{args.bundle_command}`", "", to_markdown(res, "The shipped model (export/)")]
        if args.previous_eval:
            parts += ["### Against the bundle it replaced", "",
                      "The same `ecgreport evaluate` on the previous bundle (git history: `export/` before the "
                      "round-2 model), current code and references:", "",
                      *comparison_table(res, json.loads(args.previous_eval.read_text())), ""]
    if args.ablation:
        parts += ["## Ablation: the model levers of round 2 (same budget per row except `short`; PyTorch checkpoints, fold 10)", "",
                  *ablation_table(args.ablation), ""]
    if args.levers:
        levers = args.levers.read_text().strip().splitlines()
        if levers and levers[0].startswith("## "):  # the page has its own heading for it
            levers = levers[1:]
        while levers and not levers[0].strip():
            levers = levers[1:]
        parts += ["## Scoring and decoding levers (fold 9, chosen without labels)", "", *levers, ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    parts += _kept_block(args.out, "<!-- BEGIN ablation-round1 -->", "<!-- END ablation-round1 -->")
    parts += _foreign_block(args.out)
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}")
    if args.readme and args.bundle_eval:
        update_readme(args.readme, json.loads(args.bundle_eval.read_text()), args.bundle_command)
        print(f"updated {args.readme}")


START, END = "<!-- results:start (scripts/make_results.py) -->", "<!-- results:end -->"


def update_readme(readme: Path, res: dict, command: str) -> None:
    """Replace the text between the README's results markers with a summary of `res`."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no results markers")
    z = res["zero_shot"][res.get("zero_shot_default") or "direct"]
    rg, st = res["report_generation"], res["clinical_statements"]
    rows = ["| | shipped model | retrieval baseline | most frequent report |", "|---|---|---|---|",
            f"| METEOR (pycocoevalcap) | {rg['model']['METEOR']:.3f} | {rg['retrieval']['METEOR']:.3f} | "
            f"{rg['most_frequent']['METEOR']:.3f} |",
            f"| BLEU-4 | {rg['model']['BLEU-4']:.3f} | {rg['retrieval']['BLEU-4']:.3f} | {rg['most_frequent']['BLEU-4']:.3f} |",
            f"| CIDEr | {rg['model']['CIDEr']:.3f} | {rg['retrieval']['CIDEr']:.3f} | {rg['most_frequent']['CIDEr']:.3f} |",
            f"| clinical statement micro F1 | {st['model']['micro_f1']:.3f} | {st['retrieval']['micro_f1']:.3f} | "
            f"{st['most_frequent']['micro_f1']:.3f} |"]
    zrows = ["| zero-shot task | macro AUC (95% CI) |", "|---|---|"] + [
        f"| {task} ({v['n_classes']} classes) | {v['macro_auc']:.3f} ({v['ci95'][0]:.3f}-{v['ci95'][1]:.3f}) |"
        for task, v in z.items()]
    summary = "\n".join([
        START, "",
        f"PTB-XL fold 10 ({res['n_records']} records; {res['n_with_reference']} with an English reference), "
        f"measured by `{command}`; chance AUC is 0.5. Full tables, baselines and the ablation: "
        "[docs/results.md](docs/results.md); throughput: [docs/benchmarks.md](docs/benchmarks.md).", "",
        *zrows, "", *rows, "", END])
    head, rest = text.split(START, 1)
    readme.write_text(head + summary + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
