"""Choose a model's zero-shot prompts, zero-shot scoring and report decoding on PTB-XL fold 9.

    python scripts/choose_scoring.py --model export --data /work/data/ptb-xl \\
        --json scoring.json --markdown scoring.md

MODEL: a bundle folder, or a training checkpoint (.pt), exported first into a temporary
bundle (direct scoring, decoder reports). No ``scp_codes`` are read for any choice: the truth
of a fold-9 record is what the statement extractor reads in its own report
(`ecgreport.evaluation.pseudo`, as scripts/choose_thresholds.py); fold 10 is not read.

Three decisions, one table row per variant:

1. prompts: the bundle's own label embeddings and the prompt styles of `ecgreport.prompts`
   (scp: the old device wording; normalised; report: normalised plus the phrases the
   extractor reads in folds 1-8), embedded with the bundle's text model; direct (cosine)
   scoring; macro AUC per label set over the labels with at least `MIN_POSITIVES` fold-9
   pseudo-positives. Rule: the highest mean of the four sets' macro AUCs.
2. scoring: direct cosine with the chosen prompts, the decoder's likelihood of the same
   prompts (`ecgreport.evaluation.likelihood`), and their z-scored sum; same AUC and rule.
   Likelihood's cost per record is measured beside a plain ``wfdb.rdsamp`` loop on the same
   machine (the batch command must stay at least as fast as that loop).
3. report decoding (`ecgreport.evaluation.decoding`): greedy, beam 3 and 5, consensus with
   the k nearest training reports, retrieval consensus alone, MBR over the beam's n-best
   (with and without the neighbours' reports), scored against fold 9's normalised reports:
   METEOR (pycocoevalcap) and the micro/macro F1 of the extractor's statements (generated vs
   reference). Rule: `decoding.choose_decoder`. The nearest training ECGs come from the
   bundle's retrieval data, or, without it, from folds 1-8 encoded here (``--cache`` keeps
   them). Decoding is the slow part (beam search): ``--decode-limit`` caps its records.

Each of decisions 1 and 2 also gets a 95% paired bootstrap interval (records resampled) of
its mean AUC minus the old default's (scp prompts; direct scoring). Cost: a per-record cost
"fits in batch" when, added to each of batch's workers, batch stays at least as fast as the
rdsamp loop, given the batch/loop ratio measured in docs/benchmarks.md (`batch_affordable`);
a scoring or decoding that does not fit is measured here and left out of ``ecgreport batch``.

The table goes to stdout (markdown); progress to stderr; ``--render JSON`` prints the table
of an earlier ``--json`` again. ``--limit N``: the first N fold-9 records (for quick runs; the
choices then mean little). The whole of fold 9 (1,642 records) took about 4-5 minutes on
2 busy cores for runs/r2-normalised (one onnxruntime thread).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgreport.evaluation.decoding import BUNDLE_SETTING, DECODERS, choose_decoder, decode_all, text_scores
from ecgreport.evaluation.detection import macro_auc, per_class_auc
from ecgreport.evaluation.labels import load_scp_statements
from ecgreport.evaluation.likelihood import LikelihoodScorer, combine_z
from ecgreport.evaluation.pseudo import pseudo_labels
from ecgreport.evaluation.statements import read_reports
from ecgreport.evaluation.thresholds import MIN_POSITIVES
from ecgreport.prompts import PROMPT_STYLES, build_label_sets
from ecgreport.training.data import load_split

FOLDS = (9,)
TRAIN_FOLDS = tuple(range(1, 9))
SETS = ("superclass", "subclass", "form", "rhythm")


# Whether a per-record cost fits in `ecgreport batch`. Batch runs one single-threaded worker per
# core and was measured `BATCH_SPEEDUP` times as fast as the rdsamp loop (docs/benchmarks.md,
# written by benchmarks/throughput.py, row 2/1): per record it spends workers x loop / speedup
# CPU-ms, so it stays at least as fast as the loop while the added CPU-ms per record are below
# workers x loop x (1 - 1 / speedup) (2 cores, 1.40x: 0.57 x the loop's ms per record).
# Both benchmark pages hold the ratio; the smaller (the more recent pipeline on this project's
# 2-core machine: docs/benchmarks-pictures.md, 1.01x) decides, so the rule is never too generous.
BATCH_WORKERS = 2
DOCS = Path(__file__).resolve().parents[1] / "docs"
BENCHMARKS = (DOCS / "benchmarks.md", DOCS / "benchmarks-pictures.md")


def batch_speedup(paths=BENCHMARKS) -> float:
    """The smallest measured 'batch / rdsamp loop' ratio of the benchmark pages (1.0: no headroom, if absent)."""
    found = []
    for path in paths:
        match = re.search(r"batch / rdsamp loop \| ([0-9.]+)x", path.read_text(encoding="utf-8")) if path.is_file() else None
        if match:
            found.append(float(match.group(1)))
    return min(found) if found else 1.0


BATCH_SPEEDUP = batch_speedup()
BATCH_RULE = (f"added one-thread ms per record < {BATCH_WORKERS} workers x the loop's ms per record x "
              f"(1 - 1/{BATCH_SPEEDUP:.2f}), the smallest batch/loop speed ratio of docs/benchmarks*.md")


def batch_affordable(cost_ms: float, rdsamp_ms: float) -> bool:
    """True if adding `cost_ms` of one-thread CPU per record keeps batch at least as fast as the loop."""
    return cost_ms < BATCH_WORKERS * rdsamp_ms * (1 - 1 / BATCH_SPEEDUP)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_model(model: Path, data: Path, work: Path):
    """A `ModelRunner` (one thread, CPU) on the bundle `model`, or on a checkpoint exported into `work`."""
    from ecgreport.onnx.runtime import ModelRunner, load_bundle

    if model.is_file():
        from ecgreport.onnx.export import export_bundle

        log(f"{model}: a checkpoint; exporting it into a temporary bundle")
        parity = load_split(data, {FOLDS[0]}, limit=2).signals
        export_bundle(model, work / "bundle", parity, scp_statements=data / "scp_statements.csv",
                      scoring="direct", report_method="decoder")
        model = work / "bundle"
    return ModelRunner(load_bundle(model), device="cpu", threads=1)


def scored_columns(y: np.ndarray) -> list[int]:
    """The labels (columns of pseudo-truth `y`) with >= MIN_POSITIVES positives and a negative."""
    return [j for j in range(y.shape[1]) if MIN_POSITIVES <= y[:, j].sum() < len(y)]


def set_aucs(scores: dict[str, np.ndarray], pseudo: dict[str, np.ndarray], names: dict[str, list[str]]) -> dict:
    """{set: {"macro_auc", "n_labels", "per_label"}} over the labels with >= MIN_POSITIVES pseudo-positives
    (and at least one negative), and "mean" over the sets."""
    out = {}
    for name in SETS:
        if name not in scores:
            continue
        y = pseudo[name]
        cols = scored_columns(y)
        if not cols:
            continue
        macro, per = macro_auc(y[:, cols], np.asarray(scores[name])[:, cols], [names[name][j] for j in cols])
        out[name] = {"macro_auc": float(macro), "n_labels": len(cols), "per_label": per}
    out["mean"] = float(np.mean([v["macro_auc"] for v in out.values()])) if out else float("nan")
    return out


def paired_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray], pseudo: dict[str, np.ndarray],
                      n_resamples: int = 200, seed: int = 0) -> list[float]:
    """95% bootstrap interval (records resampled, the same resample for both) of the difference
    'mean over sets of macro AUC' of scores `a` minus scores `b`, on the labels `set_aucs` scores."""
    rng = np.random.default_rng(seed)
    sets = [k for k in SETS if k in a and k in b]
    cols = {k: scored_columns(pseudo[k]) for k in sets}
    sets = [k for k in sets if cols[k]]
    if not sets:
        return [float("nan"), float("nan")]
    n = len(pseudo[sets[0]])
    diffs = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        d = [np.nanmean(per_class_auc(pseudo[k][idx][:, cols[k]], np.asarray(a[k])[idx][:, cols[k]]))
             - np.nanmean(per_class_auc(pseudo[k][idx][:, cols[k]], np.asarray(b[k])[idx][:, cols[k]])) for k in sets]
        diffs.append(np.mean(d))
    return [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]


def label_prompts_of(sets: dict, names: dict[str, list[str]]) -> dict[str, list[list[str]]]:
    """{set: [[prompt, ...] per label]} in the bundle's label order, from build_label_sets output."""
    out = {}
    for name in SETS:
        if name in sets and name in names:
            by_name = {lab.name: lab.prompts or [lab.description] for lab in sets[name]}
            out[name] = [by_name[n] for n in names[name]]
    return out


def rdsamp_ms(data: Path, n: int = 200) -> float:
    """Milliseconds per record of a plain wfdb.rdsamp loop (benchmarks/throughput.py's read floor)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from throughput import find_headers, time_rdsamp, warm_page_cache

    root = data / "records100" if (data / "records100").is_dir() else data
    headers = find_headers(data, min(n, sum(1 for _ in root.rglob("*.hea"))))
    warm_page_cache(headers)
    return 1000 * time_rdsamp(headers) / max(1, len(headers))


def train_neighbours(runner, data: Path, emb: np.ndarray, k: int, cache: Path | None) -> list[list[str]]:
    """Per fold-9 record, the normalised reports of its k nearest training ECGs (folds 1-8) in
    the bundle's embedding space: the bundle's retrieval data, else folds 1-8 encoded here."""
    r = runner.bundle.retrieval
    if r is not None:
        nn = r.neighbours(emb, k)
        return [[r.reports[j] for j in r.report_ids[row]] for row in nn]
    key = hashlib.sha256((runner.bundle.path / runner.bundle.manifest["graphs"]["encoder"]).read_bytes()).hexdigest()[:16]
    path = cache / f"train-emb-{key}.npz" if cache else None
    train = None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            train_emb, reports = z["embeddings"], list(z["reports"])
    else:
        log("encoding folds 1-8 for the neighbours' reports (once; --cache keeps them)")
        train = load_split(data, set(TRAIN_FOLDS), runner.bundle.fs_hz, runner.bundle.window_samples)
        train_emb = np.concatenate([runner.encode(train.signals[i:i + 256]).embedding
                                    for i in range(0, len(train), 256)])
        reports = train.reports
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, embeddings=train_emb, reports=np.array(reports))
    sims = emb @ train_emb.T
    nn = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return [[reports[j] for j in row] for row in nn]


def compute(args) -> dict:
    t_start = time.perf_counter()
    data = args.data
    with tempfile.TemporaryDirectory(prefix="choose-scoring-") as work:
        runner = open_model(args.model, data, Path(work))
        bundle = runner.bundle
        fold = load_split(data, set(FOLDS), bundle.fs_hz, bundle.window_samples, limit=args.limit or None,
                          require_report=True)
        raw = read_reports(data / "reports_en.csv")
        raw_reports = [raw[int(i)] for i in fold.record_ids]
        names = {k: v for k, v in bundle.label_sets.items() if k in SETS}
        pseudo = pseudo_labels(raw_reports, load_scp_statements(data / "scp_statements.csv"), names)
        log(f"fold {FOLDS[0]}: {len(fold)} records with a report; encoding")
        emb = np.concatenate([runner.encode(fold.signals[i:i + 256]).embedding for i in range(0, len(fold), 256)])

        res: dict = {"model": str(args.model), "data": str(data), "folds": list(FOLDS), "n_records": len(fold),
                     "min_positives": MIN_POSITIVES, "pseudo_positives": {k: dict(zip(names[k], v.sum(0).tolist()))
                                                                          for k, v in pseudo.items()}}
        # 1. prompts
        from ecgreport.model.text_encoder import TextEncoder

        text = TextEncoder(bundle.manifest.get("text_model", {}).get("name"))
        from ecgreport.prompts import ensemble_embeddings

        prompt_rows = {"bundle's own prompts": set_aucs(runner.scores(emb, "direct"), pseudo, names)}
        styles = {}
        for style in PROMPT_STYLES:
            sets = build_label_sets(data / "scp_statements.csv", style)
            styles[style] = label_prompts_of(sets, names)
            mats = {}
            for name, labels in sets.items():
                if name in names:
                    order = {lab.name: lab for lab in labels}
                    mats[name] = ensemble_embeddings(text.embed, [order[n] for n in names[name]])
            prompt_rows[f"prompts: {style}"] = set_aucs({k: emb @ m.T for k, m in mats.items()}, pseudo, names)
            styles[style + ":direct"] = {k: emb @ m.T for k, m in mats.items()}
        best_style = max(PROMPT_STYLES, key=lambda s: (prompt_rows[f"prompts: {s}"]["mean"], s == "scp"))
        ci_prompts = paired_difference(styles[best_style + ":direct"], styles["scp:direct"], pseudo)
        res["prompts"] = {"rows": prompt_rows, "chosen": best_style, "ci95_vs_scp": ci_prompts,
                          "rule": "highest mean over the label sets of the fold-9 macro AUC (direct scoring) "
                                  "against the extractor's statements; ties keep scp"}
        log(f"prompts: {best_style}")

        # 2. scoring: direct vs likelihood vs both, with the chosen prompts
        direct = styles[best_style + ":direct"]
        scorer = LikelihoodScorer(runner, styles[best_style])
        n_lik = len(fold) if not args.likelihood_limit else min(args.likelihood_limit, len(fold))
        lik_parts, t0 = [], time.perf_counter()
        for i in range(0, n_lik, 32):
            lik_parts.append(scorer.scores(runner.encode(fold.signals[i:min(i + 32, n_lik)])))
            log(f"likelihood scoring: {min(i + 32, n_lik)}/{n_lik}")
        lik_ms = 1000 * (time.perf_counter() - t0) / max(n_lik, 1)
        lik = {k: np.concatenate([p[k] for p in lik_parts]) for k in scorer.label_prompts}
        sub = {k: v[:n_lik] for k, v in pseudo.items()}
        d_sub = {k: v[:n_lik] for k, v in direct.items()}
        scoring_rows = {
            "direct (cosine)": set_aucs(d_sub, sub, names),
            "likelihood (pmi)": set_aucs(lik, sub, names),
            "direct + likelihood (z-sum)": set_aucs({k: combine_z(d_sub[k], lik[k]) for k in lik}, sub, names),
        }
        floor_ms = rdsamp_ms(data)
        best_scoring = max(scoring_rows, key=lambda s: (scoring_rows[s]["mean"], s.startswith("direct (")))
        # A label set's prompts alone cost less than all four sets' (the rhythm prompts are few and short).
        enc_cost = runner.encode(fold.signals[:min(64, len(fold))])
        set_ms = {}
        for name, prompts in styles[best_style].items():
            one = LikelihoodScorer(runner, {name: prompts})
            t0 = time.perf_counter()
            one.scores(enc_cost)
            set_ms[name] = 1000 * (time.perf_counter() - t0) / len(enc_cost)
        per_set = {}
        for name in SETS:
            have = {m: r[name]["macro_auc"] for m, r in scoring_rows.items() if name in r}
            if have:
                best = max(have, key=lambda m: (have[m], m.startswith("direct (")))
                per_set[name] = {"chosen": best, "likelihood_ms_per_record": set_ms.get(name),
                                 "affordable": batch_affordable(set_ms.get(name, 0.0), floor_ms)}
        variants = {"direct (cosine)": d_sub, "likelihood (pmi)": lik,
                    "direct + likelihood (z-sum)": {k: combine_z(d_sub[k], lik[k]) for k in lik}}
        ci_scoring = paired_difference(variants[best_scoring], d_sub, sub)
        res["scoring"] = {"rows": scoring_rows, "chosen": best_scoring, "n_records": n_lik, "ci95_vs_direct": ci_scoring,
                          "prompts": best_style, "n_prompts": len(scorer.prompts),
                          "likelihood_ms_per_record": lik_ms, "rdsamp_ms_per_record": floor_ms, "per_set": per_set,
                          "rule": "highest mean over the label sets of the fold-9 macro AUC against the extractor's "
                                  "statements; ties keep direct; a method other than direct runs in `ecgreport batch` "
                                  "only if its cost per record keeps batch at least as fast as the rdsamp loop"}
        log(f"scoring: {best_scoring}; likelihood {lik_ms:.1f} ms/record, rdsamp loop {floor_ms:.2f} ms/record")

        # 3. report decoding
        if not args.skip_decoding:
            n_dec = len(fold) if not args.decode_limit else min(args.decode_limit, len(fold))
            neigh = train_neighbours(runner, data, emb[:n_dec], args.k, args.cache)
            texts, cost = decode_all(runner, fold.signals[:n_dec], neigh,
                                     progress=lambda d, n: log(f"decoding: {d}/{n}"))
            refs = fold.reports[:n_dec]
            with contextlib.redirect_stdout(sys.stderr):  # pycocoevalcap prints its progress
                rows = {name: {**text_scores(refs, texts[name]), "ms_per_record": cost[name]} for name in DECODERS}
            floor_dec = floor_ms  # the same read floor as decision 2's, measured once
            # the greedy decoder is in today's batch already: only the extra cost counts
            affordable = {n for n, r in rows.items()
                          if batch_affordable(r["ms_per_record"] - rows["greedy"]["ms_per_record"], floor_dec)}
            chosen, rule = choose_decoder(rows, affordable=affordable)
            fastest_ok, _ = choose_decoder(rows)
            overall, rule_all = choose_decoder(rows, runnable_only=False)
            res["decoding"] = {"rows": rows, "chosen": chosen, "rule": rule, "setting": BUNDLE_SETTING[chosen],
                               "best_overall": overall, "rule_overall": rule_all, "n_records": n_dec, "k": args.k,
                               "best_at_any_cost": fastest_ok, "affordable": sorted(affordable),
                               "rdsamp_ms_per_record": floor_dec,
                               "examples": [{"reference": refs[i], **{n: texts[n][i] for n in DECODERS}}
                                            for i in range(min(3, n_dec))]}
    res["seconds"] = round(time.perf_counter() - t_start, 1)
    return res


def _f(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def to_markdown(res: dict) -> str:
    lines = [f"## Zero-shot scoring and report decoding chosen on PTB-XL fold 9", "",
             f"Model `{res['model']}`; {res['n_records']} fold-9 records with an English report (PTB-XL, "
             f"Wagner et al. 2020). Truth: the statements the extractor reads in each record's own report "
             f"(no scp_codes); macro AUC over the labels with at least {res['min_positives']} such records. "
             f"Written by `scripts/choose_scoring.py`.", "",
             "| decision | variant | superclass | subclass | form | rhythm | mean |", "|---|---|---|---|---|---|---|"]

    def auc_row(decision, name, r, chosen):
        cells = [f"{_f(r[s]['macro_auc'])} ({r[s]['n_labels']})" if s in r else "n/a" for s in SETS]
        mark = " **chosen**" if name == chosen else ""
        return f"| {decision} | {name}{mark} | " + " | ".join(cells) + f" | {_f(r['mean'])} |"

    p = res["prompts"]
    for name, r in p["rows"].items():
        lines.append(auc_row("prompts (direct)", name, r, f"prompts: {p['chosen']}"))
    s = res["scoring"]
    for name, r in s["rows"].items():
        lines.append(auc_row(f"scoring ({s['prompts']} prompts, {s['n_records']} rec.)", name, r, s["chosen"]))
    affordable = batch_affordable(s["likelihood_ms_per_record"], s["rdsamp_ms_per_record"])
    lines += ["", "AUC cells: macro AUC (labels scored).", "",
              f"- prompts: **{p['chosen']}**; rule: {p['rule']}. Its mean minus scp's, 95% paired bootstrap "
              f"interval over records: {_f(p['ci95_vs_scp'][0])} to {_f(p['ci95_vs_scp'][1])}.",
              f"- scoring: **{s['chosen']}**; rule: {s['rule']}. Its mean minus direct's, 95% paired bootstrap "
              f"interval: {_f(s['ci95_vs_direct'][0])} to {_f(s['ci95_vs_direct'][1])}. Likelihood costs "
              f"{s['likelihood_ms_per_record']:.1f} ms per record ({s['n_prompts']} prompts, one CPU thread) against "
              f"{s['rdsamp_ms_per_record']:.2f} ms per record for the plain `wfdb.rdsamp` loop on this machine: "
              + ("within" if affordable else "beyond") + " what `ecgreport batch` can add and stay at least as fast "
              f"as that loop ({BATCH_RULE}).",
              "- per label set, by the same rule: " + "; ".join(
                  f"{name} **{v['chosen']}** (likelihood of this set's prompts alone: "
                  f"{v['likelihood_ms_per_record']:.1f} ms per record, "
                  + ("affordable" if v["affordable"] else "not affordable") + " in batch)"
                  for name, v in s.get("per_set", {}).items()) + ".", ""]
    d = res.get("decoding")
    if d:
        lines += [f"### Report decoding ({d['n_records']} records; k = {d['k']} nearest training reports)", "",
                  "| strategy | METEOR | BLEU-4 | ROUGE-L | statement micro F1 | statement macro F1 | ms/record | "
                  "in `ecgreport batch` |", "|---|---|---|---|---|---|---|---|"]
        for name, r in d["rows"].items():
            mark = " **chosen**" if name == d["chosen"] else ""
            lines.append(f"| {name}{mark} | {_f(r.get('METEOR'))} | {_f(r.get('BLEU-4'))} | {_f(r.get('ROUGE-L'))} | "
                         f"{_f(r['statement_micro_f1'])} | {_f(r['statement_macro_f1'])} | {r['ms_per_record']:.1f} | "
                         f"{BUNDLE_SETTING[name] or 'no'} |")
        lines += ["", f"- decoding: **{d['chosen']}** ({d['setting']}); rule: {d['rule']} (affordable: extra cost "
                  f"per record over greedy within {BATCH_RULE}; loop {d['rdsamp_ms_per_record']:.2f} ms per record).",
                  f"- by the same rule without the cost condition: {d['best_at_any_cost']}; among all strategies, "
                  f"the runtime's or not: {d['best_overall']}.",
                  "- statement F1: the extractor's statements in the generated text against those in the "
                  "reference text (macro over the statements read in at least one reference).", ""]
    lines.append(f"({res['seconds']} s)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required="--render" not in (argv or sys.argv), help="bundle folder or training checkpoint (.pt)")
    ap.add_argument("--data", type=Path, required="--render" not in (argv or sys.argv), help="PTB-XL folder")
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("--markdown", type=Path, help="write the table here")
    ap.add_argument("--limit", type=int, default=0, help="first N fold-9 records only (quick runs)")
    ap.add_argument("--likelihood-limit", type=int, default=0, help="likelihood scoring on the first N only")
    ap.add_argument("--decode-limit", type=int, default=0, help="report decoding on the first N only")
    ap.add_argument("--skip-decoding", action="store_true", help="decisions 1 and 2 only")
    ap.add_argument("--k", type=int, default=25, help="nearest training reports for the consensus (default 25)")
    ap.add_argument("--cache", type=Path, help="folder for the encoded folds 1-8 (bundles without retrieval data)")
    ap.add_argument("--render", type=Path, help="only print the table of a --json written before")
    args = ap.parse_args(argv)
    if args.render:
        sys.stdout.write(to_markdown(json.loads(args.render.read_text(encoding="utf-8"))))
        return
    for path in (args.model, args.data / "scp_statements.csv", args.data / "reports_en.csv"):
        if not path.exists():
            raise SystemExit(f"error: {path}: no such file or folder")
    res = compute(args)
    md = to_markdown(res)
    sys.stdout.write(md)
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=float) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
