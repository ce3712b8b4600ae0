"""Write the README's example output from a real run of `ecgreport batch sample_ecgs`.

The README shows an excerpt of a report and the first columns of `diagnoses.csv`; this
script runs the bundled model on `sample_ecgs/` into a temporary folder and puts what it
wrote between the README's example markers, so the excerpt is always what the shipped
bundle writes (rerun it whenever `export/` changes):

    python scripts/readme_example.py [--readme README.md]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgreport.outputs.writers import read_jsonl  # noqa: E402
START, END = "<!-- example:start (scripts/readme_example.py) -->", "<!-- example:end -->"
REPORT = "bradycardia_100hz"
ROWS = ("bradycardia_100hz", "normal_sinus_100hz", "tachycardia_100hz")
COLUMNS = 11


def excerpt(report: str) -> str:
    """From the 'Record:' line to the findings' end (the disclaimer and input warnings left out)."""
    lines = report.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("Record:"))
    end = next((i for i, l in enumerate(lines) if l.startswith("Input warnings:")), len(lines))
    return "\n".join(lines[start:end]).rstrip()


def block(out: Path) -> str:
    report = (out / "reports" / f"{REPORT}.txt").read_text(encoding="utf-8")
    with (out / "diagnoses.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    table = [",".join(rows[0][:COLUMNS])] + [",".join(r[:COLUMNS]) for r in rows[1:] if r[0] in ROWS]
    # What the run says of the tachycardia, from records.jsonl (the same fields the report prints).
    tachy = next(e for e in read_jsonl(out / "records.jsonl") if e["record_id"] == "tachycardia_100hz")
    generated = tachy.get("report") or ""
    called = [f["label"] for f in tachy.get("findings_present") or []]
    checked = " ".join(tachy.get("measurement_flags") or [])
    return "\n".join([
        START,
        "An excerpt of real output (`ecgreport batch sample_ecgs --out ecgreport-out`; the samples are",
        "synthetic ECGs, see `sample_ecgs/README.md`; written by `scripts/readme_example.py`),",
        f"`ecgreport-out/reports/{REPORT}.txt`:",
        "", "```text", excerpt(report), "```", "",
        "and the first columns of `diagnoses.csv` (one score column per label of every set follows,",
        "then the 0/1 `present:` calls):",
        "", "```text", *table, "```", "",
        f"On the synthetic tachycardia sample (a regular sinus rhythm) the generated report reads "
        f"\"{generated}\"" + (f" and the check against the measurements says \"{checked}\"" if checked else "")
        + f"; the findings called present are {', '.join(called) if called else 'none'}. Each call is one "
        "label's similarity against that label's own threshold, so calls can disagree with each other and "
        "with the report: read them as pointers to what to look at in the tracing, not as a diagnosis.",
        END])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    a = ap.parse_args()
    text = a.readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{a.readme}: no example markers ({START} ... {END})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ecgreport-out"
        subprocess.run([sys.executable, "-m", "ecgreport", "batch", str(ROOT / "sample_ecgs"), "--out", str(out),
                        "--quiet", "--pictures", "none"], check=True)
        new = block(out)
    head, rest = text.split(START, 1)
    a.readme.write_text(head + new + rest.split(END, 1)[1], encoding="utf-8")
    print(f"updated {a.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
