"""Clinical correctness of a report: the SCP-ECG statements it asserts.

`extract_statements` reads SCP codes ("NORM", "SR", "AFIB", "IMI", ...) back from an English
PTB-XL report with a fixed table of regular expressions; no model, no randomness. Comparing
the codes of a generated report with the record's `scp_codes` (`statement_scores`) says
whether the report is right about the heart, which BLEU/METEOR cannot.

How the rules were made
-----------------------
The rules were written by reading the English reports (`reports_en.csv`) of folds 1-8 next to
their `scp_codes`; fold 9 and fold 10 were not looked at. The reports come in two families:
the machine-translated Schiller device statements ("sinus rhythm location type normal qrs (t)
abnormal inferior infarct probably old") and terse English cardiology reports ("sinus rhythm.
left axis deviation. left anterior fascicular block."). A phrase is mapped to the code that the
PTB-XL annotation gives it; a phrase whose statement the annotation rarely codes is *not*
mapped, even where the words would suggest it (precision on folds 1-8 in brackets):

- Schiller "peripheral low voltage" is almost never LVOLT (0.08); "low limb lead voltage" is.
- "supraventricular extrasystole(s)" is almost never PAC (0.03); "premature atrial
  contraction(s)" is (0.98).
- "qt extension / prolonged qt" is rarely LNGQT (0.11-0.16): LNGQT is not emitted.
- "incomplete left bundle branch block" is rarely ILBBB (0.05): ILBBB is not emitted.
- "anterior infarct" is ASMI (0.96), never AMI: AMI is not emitted.
- Schiller "anterolateral infarct ... inferior infarct" is ILMI (0.81), not IMI + ALMI.
- "intraventricular conduction disturbance / block" is IVCD in only 0.16: not emitted.
- "p-sinistrocardiale", "p broadening" are not LAO/LAE (0.01, 0.00).

A phrase that names a statement exactly is kept when the annotation agrees at least about a
quarter of the time (e.g. "anterolateral ischemia" -> ISCAL 0.40, "inferior ischemia" ->
ISCIN 0.26, Schiller "a-v block i" -> 1AVB 0.38), so that such codes can still be scored.

Negation: a finding preceded in its sentence by "no", "not", "without" or "nor" (optionally
followed by filler such as "definite", "ecg evidence of") is not asserted: "no definite voltage
evidence of lvh" gives no LVH. Hedged findings ("inferior myocardial damage cannot be
excluded", "... possible") ARE asserted: the annotation codes them IMI in about half (0.53) of
the cases and as NORM in a fifth, so asserting them agrees better than dropping them.

Two vocabularies: the rules read the raw device wording ("overturned left type") and the
standard terms that `ecgreport.reports.normalise_report`'s table (``ecgreport/data/
report_terms.csv``) maps it to ("marked left axis deviation"), and give both the same
statements: ``scripts/check_normalisation.py`` measures that (docs/report-text.md).

NORM: "normal ecg/ekg", "otherwise normal", "no definite pathology", "probably normal" assert
NORM; a report that states only a rhythm (plus extrasystoles or limb-lead voltage) is read as
NORM too, as the annotation does (e.g. "ventricular extrasystole (s) sinus rhythm position type
normal": NORM in 15 of 17). NORM is dropped whenever a diagnostic statement is extracted, as
PTB-XL does not code "LVH ... otherwise normal ecg" as NORM. "trace only requested." asserts
nothing. A trailing cardiologist note ("Edit: NORM 100, ...") is cut off before matching.

Agreement with `scp_codes` (all keys, any likelihood; only the codes in `EXTRACTABLE_CODES`;
records with an English report), measured with
``python -m ecgreport.evaluation.statements /work/data/ptb-xl``:

============  =====  ========  ========  ========  ========
folds         n      micro P   micro R   micro F1  macro F1
============  =====  ========  ========  ========  ========
1-8 (rules)   12978  0.889     0.879     0.884     0.673
9             1642   0.871     0.856     0.863     0.620
10 (test)     1652   0.882     0.859     0.870     0.671
============  =====  ========  ========  ========  ========

Macro F1 averages the 49-50 emitted codes present in the folds, many of them rare and coded
inconsistently (F1 on folds 1-8: ISCIN 0.24, ALMI 0.13, LMI 0.30; SR 0.99, AFIB 0.99);
`extractor_agreement(...)["per_code"]` has the per-code values.

The disagreement left is mostly annotation, not reading: the same report string carries
different codes (e.g. "sinus rhythm. no definite pathology." is NORM in 101 of 175 records and
NDT in 42), so no reader of the text alone can reach 1.0.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ecgreport.reports import clean_report

_ISCH = r"isch(?:a?e)mi"  # either spelling
_INF = r"(?:myocardial )?(?:infarct|myocardial damage)"  # infarct, infarction, myocardial damage

# (code, pattern, veto): the code is asserted when `pattern` matches (not negated) and `veto`
# does not match anywhere in the report. Patterns run on `normalise_report` output.
_RULES_SRC: list[tuple[str, str, str | None]] = [
    # rhythm
    ("SR", r"sinus ?rhythm|sinusrytm", None),
    ("SARRH", r"sinus ?arrh?ythmi", None),
    ("STACH", r"sinus ?tachycardi", None),
    ("SBRAD", r"sinus ?bradycardi|sinusbradykardie", None),
    ("AFIB", r"atrial fibrillation|vorhofflimmern", None),
    ("AFLT", r"atrial flutter", None),
    ("PVC", r"(?<!supra)ventricular extrasystol|premature ventricular contraction|\bves\b", None),
    ("PAC", r"premature atrial contraction", None),
    ("BIGU", r"bigemin", None),
    ("TRIGU", r"trigemin", None),
    ("SVARR", r"supraventricular arrh?ythmi", None),
    ("SVTAC", r"(?<!paroxysmal )supraventricular tachycardi", None),
    ("PSVT", r"paroxysmal supraventricular tachycardi", None),
    ("PACE", r"pacemaker|\bpaced\b", None),
    # conduction
    ("1AVB", r"first degree a-?v block|1st degree a-?v block|a-?v[ -]block (?:i|1)\b", None),
    ("LPR", r"prolonged pr|pr interval is prolonged", None),
    ("LAFB", r"left anterior (?:fascicular block|hemiblock)|ant\. hemiblock|overdriven left type"
             r"|ueberdrehter linkstyp|(?<!borderline )left axis deviation"
             r"|(?:overturned|hyperdriven|hyped) left[- ](?:hand )?type", None),
    ("LPFB", r"left posterior (?:fascicular block|hemiblock)", None),
    ("CLBBB", r"(?<!incomplete )left bundle branch block|left-sided leg block|left leg block"
              r"|linksschenkelblock", None),
    # A plain "right bundle branch block" is CRBBB in 55% and IRBBB in 25% of folds 1-8.
    ("CRBBB", r"(?<!incomplete )right bundle branch block|bifascicular", None),
    ("IRBBB", r"incomplete right bundle branch block|partial right|right-sided (?:leg|shin) block"
              r"|schenkelblock partiell rechts", None),
    ("WPW", r"\bwpw\b|wolff?-parkinson-white|pre-?excitation|delta wave", None),
    # hypertrophy, voltage
    # Schiller adds "left hypertrophy possible" to every LBBB; PTB-XL does not code it LVH.
    ("LVH", r"left (?:ventricular )?hypertrophy|\blvh\b|sokolow",
     r"bundle branch block left hypertrophy possible"),
    ("VCLVH", r"amplitude criteria for left hypertrophy|voltages are high", None),
    ("LVOLT", r"low limb lead voltage|low-voltage|niederspannung", None),
    ("HVOLT", r"voltages in (?:limb|chest) leads are at upper limit", None),
    ("LAO/LAE", r"left atrial (?:enlargement|overload)|atrial overload left", None),
    ("RAO/RAE", r"right atrial (?:enlargement|overload)", None),
    ("SEHYP", r"septal hypertrophy", None),
    # infarction
    ("IMI", rf"inferior {_INF}|inferior infarction|old inferior", None),
    ("ASMI", rf"antero-? ?septal {_INF}|anteroseptal infarction|(?<!antero)(?<!antero-)septal infarct"
             rf"|anterior {_INF}|qs complexes in v2", None),
    ("ALMI", rf"anterolateral (?:{_INF}|infarction)(?!.*inferior)", None),
    ("ILMI", rf"inferolateral (?:myocardial )?infarct|anterolateral (?:{_INF}|infarction).*inferior", None),
    ("LMI", r"high lateral infarct|(?<![a-z])lateral myocardial infarction", None),
    ("INJAS", r"(?:anteroseptal|anterior|septal) subendocardial", None),
    ("INJAL", r"(?:antero)?lateral subendocardial", None),
    # ST-T
    ("ISCAL", rf"anterolateral(?:ly)? (?:and inferolateral(?:ly)? )?(?:as in )?{_ISCH}", None),
    ("ISCIN", rf"inferior {_ISCH}", None),
    ("ISCIL", rf"inferolateral {_ISCH}", None),
    ("NDT", r"(?:un|non-)specific abnormal(?:ities)? t|unspezifisch|non-specific t wave|t wave flattening"
            r"|t waves are low", None),
    ("NST_", r"non-specific st|st-t|(?:un|non-)specific abnormal st", None),
    ("STD_", r"st segments? (?:are |is )?(?:\w+ )?depress|st[- ]segment depression|st depression",
     r"(?:un|non-)specific abnormal st"),
    ("NT_", r"non-specific t wave|t wave flattening", None),
    ("LOWT", r"t waves are low", None),
    ("INVT", r"t waves are (?:\w+ )?inverted", None),
    ("ABQRS", r"qrs ?\(t\) ?abnormal", None),
    ("QWAVE", r"\bq waves?\b", None),
    ("DIG", r"digitalis|digoxin", None),
    ("EL", r"electrolyt|drug effect", None),
    ("NORM", r"normal e[ck]g|normally ecg|otherwise normal|no definite pathology|within normal limits"
             r"|probably normal", None),
]

# The table above, measured (kept in sync by tests/test_evaluation.py).
AGREEMENT = {
    "folds 1-8": {"micro_f1": 0.884, "macro_f1": 0.673},
    "fold 10": {"micro_f1": 0.870, "macro_f1": 0.671},
}

RULES: list[tuple[str, re.Pattern[str], re.Pattern[str] | None]] = [
    (code, re.compile(pattern), re.compile(veto) if veto else None) for code, pattern, veto in _RULES_SRC
]
EXTRACTABLE_CODES: list[str] = sorted({code for code, _, _ in RULES})

# scp_statements.csv rows with diagnostic == 1 (they exclude NORM in PTB-XL's annotation).
DIAGNOSTIC_CODES = frozenset({
    "NDT", "NST_", "DIG", "LNGQT", "IMI", "ASMI", "LVH", "LAFB", "ISC_", "IRBBB", "1AVB", "IVCD",
    "ISCAL", "CRBBB", "CLBBB", "ILMI", "LAO/LAE", "AMI", "ALMI", "ISCIN", "INJAS", "LMI", "ISCIL",
    "LPFB", "ISCAS", "INJAL", "ISCLA", "RVH", "ANEUR", "RAO/RAE", "EL", "WPW", "ILBBB", "IPLMI",
    "ISCAN", "IPMI", "SEHYP", "INJIN", "INJLA", "PMI", "3AVB", "INJIL", "2AVB",
})
# Codes that leave a report "normal" when nothing else is said.
_NORMAL_COMPANIONS = frozenset({
    "SR", "SARRH", "STACH", "SBRAD", "AFIB", "AFLT", "SVARR", "SVTAC", "PSVT", "BIGU", "TRIGU", "PACE",
    "PVC", "PAC", "LVOLT", "HVOLT",
})
_LAFB_EXPLICIT = re.compile(r"left anterior (?:fascicular block|hemiblock)|ant\. hemiblock")
# Words that make a report without any extracted code not "normal".
# "abnormality" is left out: "left atrial abnormality" (the term table's word for Schiller's
# "p-sinistrocardiale") leaves a report normal, as the raw phrase does; so is "marked right
# axis deviation" (the table's "overturned right type", a phrase no raw report uses), which
# PTB-XL codes NORM in 2 of 3 reports of folds 1-8.
_ABNORMAL_WORDS = re.compile(r"trace only|patholog|abnormal(?!ity)|isch|infarct|block|hypertroph|injury|damage"
                             r"|st |st-|t wave|t-change|(?<!marked right axis )deviat|compared with|conduction|delay")
_NEGATION = re.compile(r"\b(?:no|not|without|nor)\b(?:\s+(?:more|longer|definite|definitive|significant|ecg"
                       r"|voltage|evidence|signs?|of|for|a|an|the|any|clear))*\s*$")
_SENTENCE_END = re.compile(r"[.;,](?:\s|$)")


def normalise_report(report: str) -> str:
    """What the rules read: `ecgreport.reports.clean_report` (lower case, no "Edit: ..."
    note) without the Schiller device footer "4.46 unconfirmed report".

    Deliberately not the full `ecgreport.reports.normalise_report`: the rules read both the
    raw device vocabulary ("overturned left type") and the standard terms the term table
    maps it to ("marked left axis deviation"), so that `scripts/check_normalisation.py` can
    show that the table does not change what a report says.

    >>> normalise_report("Sinus rhythm.  Normal ECG. Edit: NORM 100")
    'sinus rhythm. normal ecg.'
    """
    text = clean_report(report)
    text = text.replace("4.46 unconfirmed report", " ").replace("unconfirmed report", " ")
    return " ".join(text.split())


def _asserted(pattern: re.Pattern[str], text: str) -> bool:
    """True if some match of `pattern` is not negated within its sentence."""
    for match in pattern.finditer(text):
        starts = [m.end() for m in _SENTENCE_END.finditer(text, 0, match.start())]
        before = text[starts[-1] if starts else 0 : match.start()]
        if not _NEGATION.search(before):
            return True
    return False


def extract_statements(report: str) -> set[str]:
    """SCP codes asserted by an English PTB-XL style report (subset of `EXTRACTABLE_CODES`).

    >>> sorted(extract_statements("sinus rhythm. left axis deviation. left anterior fascicular block."))
    ['LAFB', 'SR']
    """
    text = normalise_report(report)
    codes: set[str] = set()
    for code, pattern, veto in RULES:
        if veto is not None and veto.search(text):
            continue
        found = pattern.search(text) is not None if code == "NORM" else _asserted(pattern, text)
        if found:
            codes.add(code)
    if "ILMI" in codes:
        codes.discard("IMI")
    # LBBB shifts the axis left; PTB-XL codes LAFB with LBBB only when the report names it.
    if "CLBBB" in codes and not _LAFB_EXPLICIT.search(text):
        codes.discard("LAFB")
    if codes & DIAGNOSTIC_CODES:
        codes.discard("NORM")
    elif not (codes - _NORMAL_COMPANIONS) and not _ABNORMAL_WORDS.search(text):
        codes.add("NORM")
    return codes


def statement_scores(
    ref_codes: Sequence[Iterable[str]],
    hyp_codes: Sequence[Iterable[str]],
    codes: Sequence[str],
) -> dict:
    """Micro and macro precision/recall/F1 of predicted code sets against reference sets.

    Only the given `codes` count (others in either set are ignored). Micro pools true/false
    positives over all codes and records; macro averages the per-code values over codes with
    at least one positive in `ref_codes` (a code never in the references has no recall).
    A code that is never predicted has precision 0 (as sklearn's ``zero_division=0``).

    Returns a dict: ``micro_precision``, ``micro_recall``, ``micro_f1``, ``macro_precision``,
    ``macro_recall``, ``macro_f1``, ``n_records``, ``n_macro_codes`` and ``per_code``
    (code -> dict with ``precision``, ``recall``, ``f1``, ``support``, ``predicted``).

    >>> statement_scores([{"NORM"}, {"IMI"}], [{"NORM"}, {"NORM"}], ["NORM", "IMI"])["micro_f1"]
    0.5
    """
    if len(ref_codes) != len(hyp_codes):
        raise ValueError(f"{len(ref_codes)} reference sets but {len(hyp_codes)} hypothesis sets")
    wanted = list(dict.fromkeys(codes))
    keep = set(wanted)
    tp = dict.fromkeys(wanted, 0)
    n_pred = dict.fromkeys(wanted, 0)
    n_ref = dict.fromkeys(wanted, 0)
    for ref, hyp in zip(ref_codes, hyp_codes):
        ref_set, hyp_set = set(ref) & keep, set(hyp) & keep
        for code in ref_set:
            n_ref[code] += 1
        for code in hyp_set:
            n_pred[code] += 1
        for code in ref_set & hyp_set:
            tp[code] += 1

    def prf(t: int, p: int, r: int) -> tuple[float, float, float]:
        precision = t / p if p else 0.0
        recall = t / r if r else math.nan
        f1 = 2 * t / (p + r) if (p + r) else math.nan
        return precision, recall, f1

    per_code = {}
    for code in wanted:
        precision, recall, f1 = prf(tp[code], n_pred[code], n_ref[code])
        per_code[code] = {"precision": precision, "recall": recall, "f1": f1,
                          "support": n_ref[code], "predicted": n_pred[code]}
    micro = prf(sum(tp.values()), sum(n_pred.values()), sum(n_ref.values()))
    scored = [per_code[c] for c in wanted if n_ref[c] > 0]

    def mean(key: str) -> float:
        return sum(s[key] for s in scored) / len(scored) if scored else math.nan

    return {
        "micro_precision": micro[0] if sum(n_pred.values()) else 0.0,
        "micro_recall": micro[1],
        "micro_f1": micro[2],
        "macro_precision": mean("precision"),
        "macro_recall": mean("recall"),
        "macro_f1": mean("f1"),
        "n_records": len(ref_codes),
        "n_macro_codes": len(scored),
        "per_code": per_code,
    }


def report_statement_scores(
    scp_codes: Sequence[Iterable[str]],
    reports: Sequence[str],
    codes: Sequence[str] = EXTRACTABLE_CODES,
) -> dict:
    """Statement scores of generated `reports` against each record's `scp_codes`.

    scp_codes: one collection of codes per record, e.g. the ``scp_codes`` dict of
    ptbxl_database.csv (its keys are used, whatever the likelihood, including 0).
    Only `codes` (default: those the extractor can emit) are scored; compare the result with
    `extractor_agreement` on the same records, the score of the reference reports themselves.
    """
    if len(scp_codes) != len(reports):
        raise ValueError(f"{len(scp_codes)} label sets but {len(reports)} reports")
    return statement_scores([set(c) for c in scp_codes], [extract_statements(r) for r in reports], codes)


def read_scp_codes(database_csv: str | Path) -> dict[int, tuple[dict[str, float], int]]:
    """ecg_id -> (scp_codes dict, strat_fold) from PTB-XL's ptbxl_database.csv."""
    table = {}
    with open(database_csv, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table[int(float(row["ecg_id"]))] = (ast.literal_eval(row["scp_codes"]), int(row["strat_fold"]))
    return table


def read_reports(reports_csv: str | Path) -> dict[int, str]:
    """ecg_id -> report text from a two-column CSV (ecg_id, report) such as reports_en.csv."""
    with open(reports_csv, newline="", encoding="utf-8") as fh:
        return {int(float(row["ecg_id"])): row["report"] for row in csv.DictReader(fh)}


def extractor_agreement(
    database_csv: str | Path,
    reports_csv: str | Path,
    folds: Iterable[int],
) -> dict:
    """How well `extract_statements` on the reference reports recovers their `scp_codes`.

    Records in `folds` that have a report in `reports_csv`; all keys of `scp_codes` count,
    whatever their likelihood (the PTB-XL benchmark's convention), restricted to
    `EXTRACTABLE_CODES`. Returns `statement_scores`'s dict plus ``folds``. This is the
    sanity bound for a generated report's statement scores: a perfect report text reaches
    this, not 1.0.
    """
    labels = read_scp_codes(database_csv)
    reports = read_reports(reports_csv)
    wanted = set(folds)
    ids = sorted(i for i in reports if i in labels and labels[i][1] in wanted)
    refs = [set(labels[i][0]) for i in ids]
    hyps = [extract_statements(reports[i]) for i in ids]
    result = statement_scores(refs, hyps, EXTRACTABLE_CODES)
    result["folds"] = sorted(wanted)
    return result


def _main(argv: list[str]) -> None:
    data_dir = Path(argv[0]) if argv else Path("data/ptb-xl")
    summary = {}
    for name, folds in (("folds 1-8", range(1, 9)), ("fold 9", [9]), ("fold 10", [10])):
        res = extractor_agreement(data_dir / "ptbxl_database.csv", data_dir / "reports_en.csv", folds)
        summary[name] = {k: round(v, 4) if isinstance(v, float) else v
                         for k, v in res.items() if k != "per_code"}
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    _main(sys.argv[1:])
