"""Report-text overlap metrics with the standard captioning toolkit (pycocoevalcap).

`caption_scores` returns corpus-level BLEU-1..4, METEOR, ROUGE-L and CIDEr of generated
reports against one reference report per record, computed exactly as image-captioning papers
do: pycocoevalcap's PTBTokenizer (Stanford CoreNLP, lowercases and drops punctuation tokens),
then Bleu(4), Meteor 1.5, Rouge (ROUGE-L, beta 1.2) and Cider on the tokenised text. The
paper we re-implement called BLEU on raw strings with swapped arguments and reported ROUGE-1
as "ROUGE"; these numbers are not comparable with those. METEOR from NLTK also reads much
higher than pycocoevalcap's jar.

Notes on the toolkit's behaviour, kept on purpose so that numbers stay comparable:

- The PTB tokenizer turns brackets into "-lrb-" / "-rrb-" tokens after lowercasing, and its
  punctuation filter only knows the upper-case forms, so they stay in the text.
- CIDEr's IDF is estimated from the references being evaluated, so it depends on the corpus:
  a single record scores 0, and CIDEr of identical texts is not a fixed number.
- BLEU/METEOR/ROUGE-L/CIDEr are corpus-level numbers; there is no per-record CI here.

Empty texts: a hypothesis (or reference) that is empty after tokenisation is replaced by the
single token "." before scoring. Punctuation never survives tokenisation, so "." matches
nothing: an empty report scores 0 on every metric, and METEOR's jar (which can stall on an
empty line) never sees one.

Java: the PTB tokenizer and METEOR are Java programs. Without a ``java`` on PATH (see
`java_available`), both are skipped with a logged warning: a simple tokenizer (lowercase,
words and numbers, punctuation dropped, see `simple_tokenize`) is used instead and the result
has no "METEOR" key. Such numbers are close to, but not the same as, the PTB-tokenised ones.
pycocoevalcap itself is the optional extra ``pip install 'ecgreport[eval]'``.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence

logger = logging.getLogger(__name__)

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
EMPTY_PLACEHOLDER = "."
_WORD = re.compile(r"[a-z0-9]+(?:[-'./][a-z0-9]+)*")


def java_available() -> bool:
    """True when a ``java`` executable is on PATH (needed for PTB tokenisation and METEOR)."""
    return shutil.which("java") is not None


def simple_tokenize(text: str) -> str:
    """Lowercase and keep words/numbers (inner '-', '.', '/', "'" kept), space-separated.

    The fallback for the PTB tokenizer when Java is missing.

    >>> simple_tokenize("Sinus rhythm. QRS(T) abnormal, 0.2 mV; p-sinistrocardiale")
    'sinus rhythm qrs t abnormal 0.2 mv p-sinistrocardiale'
    """
    return " ".join(_WORD.findall(text.lower()))


def _import_toolkit():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("text metrics need pycocoevalcap: pip install 'ecgreport[eval]'") from err
    return Bleu, Meteor, Rouge, Cider, PTBTokenizer


def _ptb_tokenize(tokenizer_cls, captions: dict) -> dict[int, list[str]]:
    """pycocoevalcap's PTBTokenizer; if its package folder is read-only (it writes a temporary
    file next to the jar), the same java command and punctuation filter run from a temp dir."""
    try:
        return tokenizer_cls().tokenize(captions)
    except PermissionError:
        import os
        import subprocess
        import tempfile

        from pycocoevalcap.tokenizer import ptbtokenizer

        logger.info("pycocoevalcap folder is read-only; running its PTB tokenizer from a temp dir")
        jar = os.path.join(os.path.dirname(os.path.abspath(ptbtokenizer.__file__)),
                           ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
        ids = [k for k, v in captions.items() for _ in v]
        lines = "\n".join(c["caption"].replace("\n", " ") for v in captions.values() for c in v)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "captions.txt")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(lines)
            out = subprocess.run(["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer",
                                  "-preserveLines", "-lowerCase", path],
                                 check=True, stdout=subprocess.PIPE).stdout.decode()
        result: dict[int, list[str]] = {}
        for key, line in zip(ids, out.split("\n")):
            words = [w for w in line.rstrip().split(" ") if w not in ptbtokenizer.PUNCTUATIONS]
            result.setdefault(key, []).append(" ".join(words))
        return result


def _fill_empty(tokenised: dict[int, list[str]], what: str) -> dict[int, list[str]]:
    n_empty = 0
    for key, texts in tokenised.items():
        if not texts[0].strip():
            tokenised[key] = [EMPTY_PLACEHOLDER]
            n_empty += 1
    if n_empty:
        logger.warning("%d empty %s replaced by %r (scores 0 on every metric)", n_empty, what, EMPTY_PLACEHOLDER)
    return tokenised


def _meteor_score(meteor_cls, gts: dict, res: dict) -> float:
    meteor = meteor_cls()
    try:
        score, _ = meteor.compute_score(gts, res)
    finally:
        # Stop the jar now rather than whenever the object is collected.
        process = meteor.meteor_p
        if process.stdin:
            process.stdin.close()
        process.kill()
        process.wait()
    return float(score)


def caption_scores(
    references: Sequence[str],
    hypotheses: Sequence[str],
    java: bool | None = None,
) -> dict[str, float]:
    """Corpus-level BLEU-1..4, METEOR, ROUGE-L and CIDEr of `hypotheses` against `references`.

    references, hypotheses: one string per record, same order (one reference per record).
    java: None uses Java when available; False forces the Java-free path (no METEOR, simple
    tokenizer); True raises if Java is missing.
    Returns {metric: float} with the keys of `METRICS` ("METEOR" only when Java ran); all
    values in [0, 1] except CIDEr (0-10).

    >>> caption_scores(["sinus rhythm normal ecg"] * 2, ["sinus rhythm normal ecg"] * 2)["BLEU-4"]  # doctest: +SKIP
    0.99999...
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no records to score")
    if java is None:
        java = java_available()
        if not java:
            logger.warning("java not found: METEOR skipped and a simple tokenizer used instead of PTB; "
                           "scores are not exactly comparable with published pycocoevalcap numbers")
    elif java and not java_available():
        raise RuntimeError("java=True but no java executable on PATH")
    Bleu, Meteor, Rouge, Cider, PTBTokenizer = _import_toolkit()

    refs_in = {i: [str(r).replace("\n", " ")] for i, r in enumerate(references)}
    hyps_in = {i: [str(h).replace("\n", " ")] for i, h in enumerate(hypotheses)}
    if java:
        # Tokenise together so one JVM start serves both; ids keep references and hypotheses apart.
        n = len(references)
        joint = {i: [{"caption": t[0] or EMPTY_PLACEHOLDER}] for i, t in refs_in.items()}
        joint.update({n + i: [{"caption": t[0] or EMPTY_PLACEHOLDER}] for i, t in hyps_in.items()})
        tokenised = _ptb_tokenize(PTBTokenizer, joint)
        gts = {i: tokenised[i] for i in range(n)}
        res = {i: tokenised[n + i] for i in range(n)}
    else:
        gts = {i: [simple_tokenize(t[0])] for i, t in refs_in.items()}
        res = {i: [simple_tokenize(t[0])] for i, t in hyps_in.items()}
    gts = _fill_empty(gts, "reference(s)")
    res = _fill_empty(res, "hypothesis(es)")

    scores: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n_gram, value in enumerate(bleu, start=1):
        scores[f"BLEU-{n_gram}"] = float(value)
    if java:
        scores["METEOR"] = _meteor_score(Meteor, gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    scores["ROUGE-L"] = float(rouge)
    cider, _ = Cider().compute_score(gts, res)
    scores["CIDEr"] = float(cider)
    return scores
