"""Report decoding strategies compared on one split, and how they are scored.

Strategies (`DECODERS`), all from one bundle (`ModelRunner`) and the reports of the k nearest
training ECGs in its embedding space (`neighbours`):

  greedy                      the decoder's argmax text (the bundle's "decoder" method)
  beam-3, beam-5              beam search, the best length-normalised hypothesis
  model+retrieval consensus   MBR choice among the greedy text and the neighbours' reports
                              (the bundle's "consensus" method)
  retrieval consensus         MBR choice among the neighbours' reports alone
  mbr: beam-5 n-best          MBR choice among the beam's finished hypotheses
  mbr: beam-5 n-best + retrieval   ... among those and the neighbours' reports

MBR (minimum Bayes risk) is `ecgreport.onnx.retrieval.mbr_select`: the candidate with the
highest summed word uni+bigram F1 to all candidates. Texts are compared in standard terms
(`normalise_report` on both sides).

`text_scores` scores texts against references without diagnostic labels: METEOR (and the
other pycocoevalcap metrics) and the micro/macro F1 of the statements the extractor reads in
the generated text against those it reads in the reference text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ecgreport.evaluation.statements import EXTRACTABLE_CODES, extract_statements, statement_scores
from ecgreport.onnx.retrieval import mbr_select
from ecgreport.reports import normalise_report

DECODERS = ("greedy", "beam-3", "beam-5", "model+retrieval consensus", "retrieval consensus",
            "mbr: beam-5 n-best", "mbr: beam-5 n-best + retrieval")
# What each candidate for the default means in a bundle's manifest and `ecgreport batch`;
# None: not a method the runtime has (it would need code in ecgreport/onnx/runtime.py).
BUNDLE_SETTING = {
    "greedy": "report.method decoder, --beams 1",
    "beam-3": "report.method decoder, --beams 3",
    "beam-5": "report.method decoder, --beams 5",
    "model+retrieval consensus": "report.method consensus, --beams 1",
    "retrieval consensus": None,
    "mbr: beam-5 n-best": None,
    "mbr: beam-5 n-best + retrieval": None,
}


def decode_all(runner, signals: np.ndarray, neighbour_reports: Sequence[Sequence[str]], batch_size: int = 64,
               progress=None) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Every strategy's report for each window of `signals` (N, 12, window), and each
    strategy's cost in milliseconds per record on this machine (the decoding it needs beyond
    the encoder: a strategy that reuses another's output is charged both).

    neighbour_reports: per record, the reports of its k nearest training ECGs, best first.
    """
    out: dict[str, list[str]] = {name: [] for name in DECODERS}
    seconds = dict.fromkeys(["encode", "greedy", "beam-3", "beam-5", "mbr"], 0.0)
    decode = runner.bundle.tokenizer.decode
    for start in range(0, len(signals), batch_size):
        t = time.perf_counter()
        enc = runner.encode(signals[start:start + batch_size])
        seconds["encode"] += time.perf_counter() - t
        t = time.perf_counter()
        greedy = runner.generate(enc)
        seconds["greedy"] += time.perf_counter() - t
        nbest: dict[int, list[list[str]]] = {}
        for beams in (3, 5):
            t = time.perf_counter()
            nbest[beams] = [[decode(ids) for _, ids in runner.beam_hypotheses(enc, i, runner.max_tokens, beams)]
                            for i in range(len(enc))]
            seconds[f"beam-{beams}"] += time.perf_counter() - t
        t = time.perf_counter()
        for i, g in enumerate(greedy):
            neigh = [normalise_report(r) for r in neighbour_reports[start + i]]
            five = [normalise_report(h) for h in nbest[5][i]]
            out["greedy"].append(normalise_report(g))
            out["beam-3"].append(normalise_report(nbest[3][i][0]))
            out["beam-5"].append(five[0])
            out["model+retrieval consensus"].append(mbr_select(neigh + [normalise_report(g)]) if g else mbr_select(neigh))
            out["retrieval consensus"].append(mbr_select(neigh))
            out["mbr: beam-5 n-best"].append(mbr_select(five))
            out["mbr: beam-5 n-best + retrieval"].append(mbr_select(five + neigh))
        seconds["mbr"] += time.perf_counter() - t
        if progress is not None:
            progress(min(start + batch_size, len(signals)), len(signals))
    n = max(len(signals), 1)
    ms = {k: 1000 * v / n for k, v in seconds.items()}
    mbr_each = ms["mbr"] / 4  # the four MBR choices share that loop about equally
    cost = {"greedy": ms["greedy"], "beam-3": ms["beam-3"], "beam-5": ms["beam-5"],
            "model+retrieval consensus": ms["greedy"] + mbr_each, "retrieval consensus": mbr_each,
            "mbr: beam-5 n-best": ms["beam-5"] + mbr_each, "mbr: beam-5 n-best + retrieval": ms["beam-5"] + mbr_each}
    return out, cost


def text_scores(references: Sequence[str], hypotheses: Sequence[str], java: bool | None = None) -> dict:
    """pycocoevalcap metrics (METEOR needs Java) and statement micro/macro F1 of `hypotheses`
    against `references` (both normalised texts, one per record). Statements: the extractor's
    codes read in each text; macro over the codes read in at least one reference."""
    from ecgreport.evaluation.text_metrics import caption_scores

    out = dict(caption_scores(list(references), list(hypotheses), java=java))
    st = statement_scores([extract_statements(r) for r in references], [extract_statements(h) for h in hypotheses],
                          EXTRACTABLE_CODES)
    out.update({"statement_micro_f1": st["micro_f1"], "statement_macro_f1": st["macro_f1"],
                "statement_codes": st["n_macro_codes"]})
    return out


def choose_decoder(results: dict[str, dict], baseline: str = "greedy", runnable_only: bool = True,
                   affordable: set[str] | None = None) -> tuple[str, str]:
    """The default decoding: the highest METEOR among the strategies whose statement macro F1
    is not below `baseline`'s (with `runnable_only`, only those the runtime has, see
    `BUNDLE_SETTING`; with `affordable`, only those in it, e.g. the ones whose cost keeps
    ``ecgreport batch`` fast enough); `baseline` when none qualifies. Returns (name, the rule
    in words). Without METEOR (no Java): BLEU-4 instead.

    >>> choose_decoder({"greedy": {"METEOR": .2, "statement_macro_f1": .3},
    ...                 "beam-3": {"METEOR": .25, "statement_macro_f1": .2},
    ...                 "beam-5": {"METEOR": .22, "statement_macro_f1": .31}})[0]
    'beam-5'
    """
    metric = "METEOR" if all("METEOR" in r for r in results.values()) else "BLEU-4"
    floor = results[baseline]["statement_macro_f1"]
    ok = [n for n, r in results.items()
          if (BUNDLE_SETTING.get(n) or not runnable_only) and (affordable is None or n in affordable or n == baseline)
          and r["statement_macro_f1"] >= floor]
    best = max(ok, key=lambda n: (results[n][metric], n == baseline)) if ok else baseline
    among = "the strategies `ecgreport batch` can run" if runnable_only else "all strategies"
    if affordable is not None:
        among += " at an affordable cost"
    rule = f"highest fold-9 {metric} among {among} whose statement macro F1 is not below {baseline}'s ({floor:.3f})"
    return best, rule
