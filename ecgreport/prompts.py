"""Zero-shot label sets and the text prompts that define them.

A label's score is the cosine similarity between the ECG embedding and the label's text
embedding: the normalised mean of the text model's embeddings of its prompts (a prompt
ensemble, as in CLIP). No diagnostic label is used anywhere in this: prompts are built from
the SCP statement descriptions in PTB-XL's `scp_statements.csv` plus synonyms in the wording
PTB-XL's reports use. Prompt styles (`PROMPT_STYLES`, `build_label_sets(style=...)`):

  scp         the descriptions and `LEGACY_REPORT_PHRASES`, in the device vocabulary of the
              raw reports ("p sinistrocardiale", "av block first degree"): the prompts of
              the bundles made before the reports were normalised
  normalised  the same texts in the words the model is trained on: every prompt through
              `ecgreport.reports.normalise_report`, with `REPORT_PHRASES` (standard terms)
  report      `normalised` plus the phrases of each statement that the statement extractor
              reads most often in the training reports (folds 1-8), from the table
              ``ecgreport/data/report_prompts.csv`` (`ecgreport.evaluation.prompt_mining`)

`DEFAULT_PROMPT_STYLE` is the one chosen on PTB-XL fold 9 by ``scripts/choose_scoring.py``
(macro AUC against the statements the extractor reads in fold 9's own reports; no scp_codes;
"report" over "scp": +0.002 mean macro AUC, 95% paired bootstrap 0.001 to 0.004, on
runs/r2-normalised). A bundle's label embeddings are made from these prompts at export
(``ecgreport export-onnx``, `ecgreport.onnx.export.export_bundle`); an existing bundle keeps
the prompts its manifest lists until it is exported again (and its thresholds, chosen on the
old embeddings, must then be chosen again: scripts/choose_thresholds.py).

Label sets (as in the PTB-XL benchmark of Strodthoff et al. 2021):
  superclass  NORM, MI, STTC, CD, HYP; prompts = descriptions of their member statements
  subclass    the 23 diagnostic subclasses; prompts = descriptions of their statements
  form        the 19 form statements;   rhythm  the 12 rhythm statements
"""

from __future__ import annotations

import csv
import functools
import io
import re
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPERCLASS_NAMES = {
    "NORM": "normal ECG",
    "MI": "myocardial infarction",
    "STTC": "ST/T change",
    "CD": "conduction disturbance",
    "HYP": "hypertrophy",
}

# Display names of diagnostic subclasses that are not SCP statements themselves.
SUBCLASS_NAMES = {
    "STTC": "ST/T change", "_AVB": "AV block", "LAFB/LPFB": "left anterior/posterior fascicular block",
    "ISCA": "ischemic ST-T changes in anterior leads", "ISCI": "ischemic ST-T changes in inferior leads",
}

# Report-style wording for statements whose SCP description reads differently from how the
# reports say it, as written before the reports were normalised (style "scp"). Keys are SCP
# codes; values are extra prompts.
LEGACY_REPORT_PHRASES: dict[str, list[str]] = {
    "NORM": ["sinus rhythm. normal ecg.", "normal ecg"],
    "LAFB": ["left anterior hemiblock"],
    "LPFB": ["left posterior hemiblock"],
    "IRBBB": ["incomplete right bundle branch block"],
    "CRBBB": ["right bundle branch block"],
    "CLBBB": ["left bundle branch block"],
    "1AVB": ["av block first degree", "prolonged pq interval"],
    "LVH": ["voltages suggest left ventricular hypertrophy", "left ventricular hypertrophy with strain"],
    "LAO/LAE": ["p sinistrocardiale, left atrial enlargement"],
    "RAO/RAE": ["p dextrocardiale, right atrial enlargement"],
    "IMI": ["inferior infarction, probably old", "qrs (t) abnormal, inferior infarct"],
    "ASMI": ["anteroseptal infarction, probably old", "qrs (t) abnormal, anteroseptal infarct"],
    "AMI": ["anterior infarction"],
    "NDT": ["non-specific t wave abnormality"],
    "NST_": ["non-specific st-t changes"],
    "ISC_": ["st-t changes as in ischemia"],
    "AFIB": ["atrial fibrillation"],
    "SR": ["sinus rhythm"],
}

# The same in the standard terms of `normalise_report`'s table (styles "normalised" and
# "report"): the legacy phrases where they already are standard terms, these where the
# device vocabulary differs or a report phrasing is added. Each phrase is a fixed point of
# `normalise_report` (tests/test_scoring_levers.py).
REPORT_PHRASES: dict[str, list[str]] = {
    **LEGACY_REPORT_PHRASES,
    "NORM": ["sinus rhythm. normal ecg.", "normal ecg", "sinus rhythm normal axis normal ecg"],
    "LAFB": ["left anterior hemiblock", "left axis deviation. left anterior fascicular block."],
    "1AVB": ["first degree av block", "prolonged pr interval"],
    "LVH": ["voltages suggest left ventricular hypertrophy", "left ventricular hypertrophy with strain",
            "left ventricular strain pattern"],
    "LAO/LAE": ["left atrial abnormality, left atrial enlargement"],
    "RAO/RAE": ["right atrial abnormality, right atrial enlargement"],
}

PROMPT_STYLES = ("scp", "normalised", "report")
DEFAULT_PROMPT_STYLE = "report"
MINED_PROMPTS_FILE = "report_prompts.csv"

_PAREN_NOTE = re.compile(r"\s*\((former|unknown origin)[^)]*\)", re.IGNORECASE)


@dataclass
class Label:
    name: str
    description: str
    prompts: list[str] = field(default_factory=list)


def _flag(row: dict, key: str) -> bool:
    value = (row.get(key) or "").strip()
    return value not in ("", "0", "0.0", "nan")


def read_statements(path: Path) -> list[dict]:
    """Rows of scp_statements.csv, the code under key 'code'."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["code"] = row.get("") or row.get("Unnamed: 0") or row.get("code")
    return rows


def _clean(description: str) -> str:
    return _PAREN_NOTE.sub("", description).strip()


@functools.lru_cache(maxsize=1)
def mined_phrases() -> dict[str, list[str]]:
    """{code: [phrase, ...]} from ``ecgreport/data/report_prompts.csv``, most frequent first."""
    text = resources.files("ecgreport.data").joinpath(MINED_PROMPTS_FILE).read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        out.setdefault(row["code"], []).append(row["phrase"])
    return out


def code_prompts(code: str, description: str, style: str = DEFAULT_PROMPT_STYLE) -> list[str]:
    """The prompts of one SCP statement in `style` (see the module docstring).

    >>> code_prompts("1AVB", "first degree AV block", "scp")
    ['first degree AV block', 'av block first degree', 'prolonged pq interval']
    >>> code_prompts("LAO/LAE", "left atrial overload/enlargement", "normalised")
    ['left atrial overload/enlargement', 'left atrial abnormality, left atrial enlargement']
    """
    from ecgreport.reports import normalise_report

    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}: choose one of {', '.join(PROMPT_STYLES)}")
    if style == "scp":
        return [_clean(description)] + LEGACY_REPORT_PHRASES.get(code, [])
    texts = [_clean(description)] + REPORT_PHRASES.get(code, [])
    if style == "report":
        texts += mined_phrases().get(code, [])
    return [normalise_report(t) for t in texts]


def _prompts(codes: list[str], by_code: dict[str, dict], style: str) -> list[str]:
    out: list[str] = []
    for code in codes:
        for p in code_prompts(code, by_code[code]["description"], style):
            if p.lower() not in (q.lower() for q in out):
                out.append(p)
    return out


def build_label_sets(scp_statements_csv: Path, style: str = DEFAULT_PROMPT_STYLE) -> dict[str, list[Label]]:
    """The four PTB-XL label sets with their prompts in `style`, from scp_statements.csv."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}: choose one of {', '.join(PROMPT_STYLES)}")
    rows = read_statements(scp_statements_csv)
    by_code = {r["code"]: r for r in rows}
    diag = [r for r in rows if _flag(r, "diagnostic")]
    sets: dict[str, list[Label]] = {"superclass": [], "subclass": [], "form": [], "rhythm": []}
    for sc, name in SUPERCLASS_NAMES.items():
        codes = [r["code"] for r in diag if r["diagnostic_class"] == sc]
        if codes:
            sets["superclass"].append(Label(sc, name, _prompts(codes, by_code, style)))
    for sub in sorted({r["diagnostic_subclass"] for r in diag if r["diagnostic_subclass"]}):
        codes = [r["code"] for r in diag if r["diagnostic_subclass"] == sub]
        desc = SUBCLASS_NAMES.get(sub) or (_clean(by_code[sub]["description"]) if sub in by_code
                                           else "; ".join(_clean(by_code[c]["description"]) for c in codes))
        sets["subclass"].append(Label(sub, desc, _prompts(codes, by_code, style)))
    for key in ("form", "rhythm"):
        for r in rows:
            if _flag(r, key):
                sets[key].append(Label(r["code"], _clean(r["description"]), _prompts([r["code"]], by_code, style)))
    return {k: v for k, v in sets.items() if v}


def ensemble_embeddings(embed, labels: list[Label]) -> np.ndarray:
    """(n_labels, D) unit vectors: the normalised mean of each label's prompt embeddings.

    embed: a function list[str] -> (n, D) unit-length array (e.g. TextEncoder.embed).
    """
    prompts = [p for label in labels for p in (label.prompts or [label.description])]
    emb = embed(prompts)
    out, start = [], 0
    for label in labels:
        n = len(label.prompts or [label.description])
        v = emb[start : start + n].mean(axis=0)
        out.append(v / max(float(np.linalg.norm(v)), 1e-12))
        start += n
    return np.stack(out).astype(np.float32)
