"""Write docs/own-data.md: run the own-data walk-through on LUDB, command by command, and put
each command beside what it printed (no number typed by hand).

    python scripts/make_own_data_doc.py --ludb ../shared/data/ludb --work /tmp/ludb-walk

Each command in STEPS is run with bash in --work, with $LUDB set to the LUDB folder (as the
document tells the reader to set it); the output shown is the command's own, with progress
bars and the text model's loading lines left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (title, explanation, command, which output lines to show: a regex, or None for all)
STEPS = [
    ("1. Build the dataset",
     "Walk LUDB's records (as `ecgreport batch` finds them), take each report from the header's "
     "comment lines (every line that is not a `<field>: value` line: LUDB's diagnoses), and cut a "
     "deterministic 60/20/20 record-level split (LUDB has one record per patient).",
     'ecgreport dataset build "$LUDB/data" --out ludb-ds --split 60/20/20 --name LUDB '
     '--citation "Kalyakulina et al., IEEE Access 8, 186181-186190, 2020; ODC-By 1.0"', None),
    ("2. Check it",
     "One screen: what the dataset holds and what is missing. Exit 0 when training can start.",
     "ecgreport dataset check ludb-ds", None),
    ("3. Train",
     "A few epochs of the default ResNet model at 100 Hz (LUDB's 500 Hz records are resampled). "
     "60 training records: the point is that it runs, not the model it gives. `OMP_NUM_THREADS=1` "
     "because this machine is shared: a small model gains nothing from more threads.",
     "OMP_NUM_THREADS=1 nice ecgreport train --data ludb-ds --out runs/ludb --epochs 15 --patience 15 "
     "--batch-size 8 --lr 3e-3 --device cpu",
     r"^(ecgreport train|early stop|done:|epoch \d+:)"),
    ("4. Export, with your own label set",
     "`ludb-labels.csv` (columns `label,description`) names seven of LUDB's findings; `--labels "
     "NAME=FILE.csv` adds it as the label set `ludb` (repeat for more sets). The parity check runs on "
     "the dataset's own records, found from the checkpoint's absolute data path.",
     "printf 'label,description\\nSR,sinus rhythm\\nSBRAD,sinus bradycardia\\nAFIB,atrial fibrillation\\n"
     "LAD,left axis deviation\\nLVH,left ventricular hypertrophy\\nLAH,left atrial hypertrophy\\n"
     "IRBBB,incomplete right bundle branch block\\n' > ludb-labels.csv\n"
     "ecgreport export-onnx runs/ludb/best.pt --out ludb-bundle --labels ludb=ludb-labels.csv", None),
    ("5. Run it on a folder",
     "The usual `batch`, here over all 100 LUDB records (the training ones included: this is a demo). "
     "Trained on 60 records, the decoder alone still repeats words; the bundle's report is the "
     "consensus of the decoder's text and the nearest training ECGs' reports (`--report-method "
     "consensus`, export's default), and the report names the training data from the run's config.",
     'ecgreport batch "$LUDB/data" --model ludb-bundle --out ludb-out && sed -n 10,30p ludb-out/reports/1.txt',
     None),
    ("6. A truth table, then evaluate",
     "LUDB's reports are its diagnoses, so `dataset truth` reads a 0/1 table from them (a label is "
     "present when the report contains its description, whole words). `evaluate` then measures the "
     "test split: report metrics against the reference reports, and macro AUC with a bootstrap 95% "
     "interval and the F1 of the labels written in each system's report for the `ludb` set.",
     "ecgreport dataset truth ludb-ds --labels ludb=ludb-labels.csv\n"
     "ecgreport evaluate --data ludb-ds --model ludb-bundle --truth ludb=ludb-ds/truth/ludb.csv --json ludb-eval.json",
     None),
]

# Progress bars and library chatter, not the command's own output.
NOISE = re.compile(r"Loading weights|PTBTokenizer|it/s\]|ECG/s ETA|^\s*$")


def run_step(command: str, work: Path, env: dict) -> tuple[str, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "-c", "set -e\n" + command], cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.stdout, time.perf_counter() - t0, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ludb", type=Path, required=True, help="LUDB folder (data/, ludb.csv)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ludb-walk"))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "own-data.md")
    args = parser.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    env = {**os.environ, "LUDB": str(args.ludb.resolve()), "COLUMNS": "400", "PYTHONPATH": str(REPO)}
    parts = []
    for title, text, command, keep in STEPS:
        runnable = re.sub(r"(?m)\becgreport ", "python -m ecgreport ", command)
        output, seconds, rc = run_step(runnable, args.work, env)
        if rc != 0:
            raise SystemExit(f"step {title!r} failed with exit code {rc}:\n{output[-3000:]}")
        lines = [line.rstrip() for line in output.splitlines() if not NOISE.search(line)]
        if keep:
            lines = [line for line in lines if re.search(keep, line)]
        parts.append(f"## {title}\n\n{text}\n\n```bash\n{command}\n```\n\n"
                     f"Output ({seconds:.0f} s here):\n\n```text\n" + "\n".join(lines) + "\n```\n")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = f"""# Train on your own ECGs and reports: a walk-through on LUDB

`ecgreport` learns from ECGs and their free-text reports, with no diagnostic labels. This page
takes a database that is not PTB-XL through the whole flow, one command per step:
`dataset build` -> `train` -> `export-onnx` -> `batch` -> `evaluate`.

The data: LUDB, the Lobachevsky University Database (Kalyakulina et al., "LUDB: A New
Open-Access Validation Tool for Electrocardiogram Delineation Algorithms", IEEE Access 8,
186181-186190, 2020; PhysioNet, doi:10.13026/eegm-h675; ODC-By 1.0): 12-lead, 500 Hz, 10 s
records whose English diagnoses are in the WFDB header comments. Download it from
PhysioNet (`wget -r -np https://physionet.org/files/ludb/1.0.1/`) and point `LUDB` at it;
the run below used the 100 odd-numbered records in `../shared/data/ludb`:

```bash
LUDB=../shared/data/ludb   # the folder holding data/ (and ludb.csv)
```

Install the training extras first: `pip install ".[train,eval]"` (see the README). The dataset format itself (`database.csv`, `reports.csv`, optional `labels/` and `truth/`) is
in `ecgreport train --help` and the README. Every output below was printed by the command
above it, run by `python {Path(__file__).relative_to(REPO)} --ludb ../shared/data/ludb` on
{when} (a shared 2-core CPU). With 60 training records the numbers say only that each step
works: they are not a measure of the method.

"""
    args.out.write_text(head + "\n".join(parts), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
