"""Report wording for label prompts, read from PTB-XL's own training reports (folds 1-8).

The zero-shot prompts (`ecgreport.prompts`) should speak the words the reports use, after
`ecgreport.reports.normalise_report`. This module finds them without any diagnostic label:
for every training report (normalised) and every SCP code that the statement extractor
(`ecgreport.evaluation.statements.extract_statements`) asserts in it, the phrase that the
extractor's rule for that code matched (widened to whole words) is counted. The most
frequent phrases of each code (at most `PER_CODE`, each seen at least `MIN_COUNT` times)
become ``ecgreport/data/report_prompts.csv`` (code, phrase, count), package data that
`ecgreport.prompts.build_label_sets` reads.

Regenerate (folds 1-8 only; fold 9 and 10 are never read):

    python -m ecgreport.evaluation.prompt_mining /work/data/ptb-xl > ecgreport/data/report_prompts.csv

``tests/test_scoring_levers.py`` checks the shipped table equals this output on PTB-XL.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from ecgreport.evaluation.statements import RULES, extract_statements
from ecgreport.reports import normalise_report

TRAIN_FOLDS = frozenset(range(1, 9))
PER_CODE = 3
MIN_COUNT = 5
MAX_WORDS = 6  # longer matches are spans of a ".*" rule (ILMI), not one phrase
_WORD_CHAR = re.compile(r"[a-z0-9-]")


def _widen(text: str, start: int, end: int) -> str:
    """text[start:end] grown to whole words ("sinus tachycardi" -> "sinus tachycardia")."""
    while start > 0 and _WORD_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and _WORD_CHAR.match(text[end]):
        end += 1
    return text[start:end].strip(" ,.;")


def phrase_counts(reports: Iterable[str]) -> dict[str, Counter]:
    """{code: Counter(phrase)} over raw report texts, as described in the module docstring.
    Only codes the extractor asserts in the report count (a negated or vetoed match does not)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for raw in reports:
        text = normalise_report(raw)
        asserted = extract_statements(raw)
        for code, pattern, _ in RULES:
            if code not in asserted:
                continue
            match = pattern.search(text)
            if match:
                counts[code][_widen(text, match.start(), match.end())] += 1
    return counts


def mine(reports: Iterable[str], per_code: int = PER_CODE, min_count: int = MIN_COUNT) -> list[tuple[str, str, int]]:
    """(code, phrase, count) rows, codes in the extractor's order, phrases by falling count.

    >>> mine(["sinus rhythm. left axis deviation."] * 5 + ["sinusrhythm left type"] * 2)[:2]
    [('SR', 'sinus rhythm', 7), ('LAFB', 'left axis deviation', 5)]
    """
    counts = phrase_counts(reports)
    rows = []
    for code in dict.fromkeys(code for code, _, _ in RULES):
        ranked = sorted(counts.get(code, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
        kept: list[str] = []
        for phrase, n in ranked:
            # A cut-short spelling ("sinus bradycardi") of a commoner phrase adds nothing.
            if n < min_count or len(phrase.split()) > MAX_WORDS or any(k.startswith(phrase) for k in kept):
                continue
            kept.append(phrase)
            rows.append((code, phrase, n))
            if len(kept) == per_code:
                break
    return rows


def training_reports(data_dir: Path) -> list[str]:
    """The English reports of PTB-XL folds 1-8, read by the dataset reader training uses."""
    from ecgreport.dataset.format import open_dataset

    ds = open_dataset(Path(data_dir))
    return [ds.reports[row.record_id] for row in ds.select(sorted(str(f) for f in TRAIN_FOLDS))]


def to_csv(rows: list[tuple[str, str, int]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "phrase", "count"])
    writer.writerows(rows)
    return out.getvalue()


if __name__ == "__main__":
    sys.stdout.write(to_csv(mine(training_reports(Path(sys.argv[1] if len(sys.argv) > 1 else "data/ptb-xl")))))
