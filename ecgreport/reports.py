"""Report text: the one normalisation function, and the word-level tokenizer of the decoder.

`normalise_report` gives every report (training target, evaluation reference, generated
text) in standard English ECG terms: PTB-XL's English reports are machine translations of
German device statements ("sinusrhythm location type normal ... 4.46 unconfirmed report"),
mapped by the table ``ecgreport/data/report_terms.csv`` (data, not code: pattern,
replacement, and why, one rule per line; written from folds 1-8 only). docs/report-text.md,
written by scripts/check_normalisation.py, shows the table leaves every report's statements
unchanged.

Torch-free: the batch command decodes token ids with this module and nothing else.

PTB-XL's reports are short and templated (median 12 words, ~1.5k distinct words among the
English translations of the training folds), so a word-level vocabulary is small (~750
entries) and exact, where a 30k-entry WordPiece table would dominate the model's size.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# Some PTB-XL reports end in curators' annotations: "... Edit: NORM 100, (NORM 100)".
# They are SCP codes, i.e. the diagnostic labels themselves, added while the dataset was
# labelled; keeping them would leak labels into training text and into references.
_EDIT_TRAILER = re.compile(r"\bedit\s*:.*$", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*|[^\sa-z0-9]")
_NO_SPACE_BEFORE = re.compile(r"\s+([.,;:!?)\]])")
_NO_SPACE_AFTER = re.compile(r"([(\[])\s+")
# The term table: package data (ecgreport/data/), one rule per line, applied in order.
TERMS_FILE = "report_terms.csv"


def clean_report(text: str) -> str:
    """A report as PTB-XL wrote it, only tidied: lower case (this also mends PTB-XL's stray
    capitals inside words, e.g. "verlÄngerung"), no curators' "Edit: <SCP codes>" trailer,
    whitespace collapsed. The device vocabulary is kept (see `normalise_report`).

    >>> clean_report("  SinusRhythm  Lagetyp normal. Edit: NORM 100, (NORM 100)")
    'sinusrhythm lagetyp normal.'
    """
    text = _EDIT_TRAILER.sub("", text)
    return _SPACES.sub(" ", text).strip().lower()


@dataclass(frozen=True)
class TermRule:
    """One line of ``ecgreport/data/report_terms.csv``: every match of `pattern` (a regular
    expression on `clean_report` text) becomes `replacement`; `comment` says why."""

    pattern: re.Pattern[str]
    replacement: str
    comment: str


def load_term_rules(path: Path | None = None) -> tuple[TermRule, ...]:
    """The term table, in file order (order matters: "overturned left type" must be read
    before "left type"). Default: the table shipped inside the package.

    Raises ValueError naming the file and line of a pattern that does not compile.
    """
    if path is None:
        text = resources.files("ecgreport.data").joinpath(TERMS_FILE).read_text(encoding="utf-8")
        where = f"ecgreport/data/{TERMS_FILE}"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    rules = []
    for line_no, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            pattern = re.compile(row["pattern"])
        except re.error as err:
            raise ValueError(f"{where}, line {line_no}: bad pattern {row['pattern']!r} ({err})") from err
        rules.append(TermRule(pattern, row["replacement"], row["comment"]))
    return tuple(rules)


@functools.lru_cache(maxsize=1)
def _default_rules() -> tuple[TermRule, ...]:
    return load_term_rules()


def normalise_report(text: str, rules: Iterable[TermRule] | None = None) -> str:
    """The canonical form of a report, used for training targets and evaluation references:
    `clean_report`, then PTB-XL's translated device vocabulary mapped to standard English ECG
    terms and the device's "4.46 unconfirmed report" footer dropped, by the rules of
    ``ecgreport/data/report_terms.csv`` (`rules`; default: that table). Idempotent.

    >>> normalise_report("  Sinus rhythm.  Normal ECG. Edit: NORM 100, (NORM 100)")
    'sinus rhythm. normal ecg.'
    >>> normalise_report("sinusrhythm location type normal normal ekg 4.46 unconfirmed report")
    'sinus rhythm normal axis normal ecg'
    """
    text = clean_report(text)
    for rule in _default_rules() if rules is None else rules:
        text = rule.pattern.sub(rule.replacement, text)
    return _SPACES.sub(" ", text).strip()


def tokenize_words(text: str) -> list[str]:
    """Split a normalised report into word and punctuation tokens.

    >>> tokenize_words("sinus rhythm. qrs (t) abnormal 4.46")
    ['sinus', 'rhythm', '.', 'qrs', '(', 't', ')', 'abnormal', '4.46']
    """
    return _TOKEN.findall(text)


def detokenize_words(tokens: Iterable[str]) -> str:
    """Join tokens back into text: no space before closing punctuation or after '('."""
    text = " ".join(tokens)
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


NO_REPEAT_NGRAM = 3


def repeated_ngram_bans(ids: list[int], n: int = NO_REPEAT_NGRAM) -> list[int]:
    """Tokens that would complete an n-gram already in `ids` (greedy decoders loop otherwise:
    "avl, avl, avl, ..."). Both the torch and the onnxruntime decoders apply it.

    >>> repeated_ngram_bans([5, 6, 7, 5, 6], n=3)
    [7]
    """
    if n <= 0 or len(ids) < n - 1:
        return []
    prefix = ids[len(ids) - n + 1 :]
    return [ids[i + n - 1] for i in range(len(ids) - n + 1) if ids[i : i + n - 1] == prefix]


class WordTokenizer:
    """Word-level vocabulary with the four special tokens the decoder needs.

    Ids: 0 <pad>, 1 <bos>, 2 <eos>, 3 <unk>, then words by falling frequency.
    """

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, words: list[str]):
        self.itos: list[str] = list(self.SPECIALS) + [w for w in words if w not in self.SPECIALS]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, reports: Iterable[str], min_count: int = 3) -> "WordTokenizer":
        counts = Counter(tok for r in reports for tok in tokenize_words(normalise_report(r)))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, report: str, max_len: int) -> list[int]:
        """<bos> w1 ... wn <eos>, truncated to max_len ids in all (no <eos> if truncated)."""
        ids = [self.BOS] + [self.stoi.get(t, self.UNK) for t in tokenize_words(normalise_report(report))]
        ids.append(self.EOS)
        return ids[:max_len]

    def decode(self, ids: Iterable[int]) -> str:
        words = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i in (self.PAD, self.BOS):
                continue
            words.append(self.itos[i] if 0 <= i < len(self.itos) else "<unk>")
        return detokenize_words(words)

    def to_dict(self) -> dict:
        return {"type": "word", "itos": self.itos}

    @classmethod
    def from_dict(cls, data: dict) -> "WordTokenizer":
        if data.get("type") != "word":
            raise ValueError(f"unknown tokenizer type {data.get('type')!r}")
        tok = cls([])
        tok.itos = list(data["itos"])
        tok.stoi = {w: i for i, w in enumerate(tok.itos)}
        return tok

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "WordTokenizer":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
