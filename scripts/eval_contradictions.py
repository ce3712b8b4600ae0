"""How often generated reports contradict their measurements, and whether correcting them
changes the statement F1 (``ecgreport.evaluation.statements``).

Input: the output folder of an ``ecgreport batch`` run (its ``records.jsonl``: the generated
report and, when the batch wrote them, the measurements; otherwise the record is read again
and measured here). For PTB-XL records (ids like ``00001_lr``), the SCP codes of
``ptbxl_database.csv`` score the original and the corrected reports.

    python scripts/eval_contradictions.py /tmp/out_fold10 --ptbxl /work/data/ptb-xl
    python scripts/eval_contradictions.py /tmp/out_ludb
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ecgreport.leads import STANDARD_LEADS  # noqa: E402
from ecgreport.measure import measure_ecg  # noqa: E402
from ecgreport.measure.contradictions import check_report  # noqa: E402
from ecgreport.outputs.writers import read_jsonl  # noqa: E402

_PTBXL_ID = re.compile(r"(\d{5})_(?:lr|hr)$")


def entries_with_measurements(out_dir: Path) -> list[dict]:
    """The ok entries of ``records.jsonl``, each with ``measurements`` (read or measured)."""
    from ecgreport.records import read_record

    out = []
    for entry in read_jsonl(Path(out_dir) / "records.jsonl"):
        if entry.get("status") != "ok" or not entry.get("report"):
            continue
        if "measurements" not in entry:
            rec = read_record(Path(entry["path"]).with_suffix(""))
            entry["measurements"] = measure_ecg(rec.signal_mv, rec.fs_hz, STANDARD_LEADS,
                                                rec.lead_mask)
        out.append(entry)
    return out


def evaluate(out_dir: Path, ptbxl: Path | None) -> dict:
    """Counts of flags (by statement and action) and, with PTB-XL codes, statement scores of
    the generated and the corrected reports."""
    entries = entries_with_measurements(out_dir)
    fired = Counter()
    n_flagged = n_corrected = 0
    originals, corrected, ids = [], [], []
    for entry in entries:
        result = check_report(entry["report"], entry["measurements"])
        for f in result["flags"]:
            fired[(f["statement"], f["action"])] += 1
        n_flagged += bool(result["flags"])
        n_corrected += any(f["action"] == "corrected" for f in result["flags"])
        originals.append(entry["report"])
        corrected.append(result["text"])
        match = _PTBXL_ID.search(entry["record_id"])
        ids.append(int(match.group(1)) if match else None)
    res = {"n": len(entries), "n_flagged": n_flagged, "n_corrected": n_corrected,
           "fired": dict(fired)}
    if ptbxl is not None and all(i is not None for i in ids) and entries:
        from ecgreport.evaluation.statements import read_scp_codes, report_statement_scores

        scp = read_scp_codes(Path(ptbxl) / "ptbxl_database.csv")
        codes = [set(scp[i][0]) for i in ids]
        for name, texts in (("generated", originals), ("corrected", corrected)):
            s = report_statement_scores(codes, texts)
            res[name] = {k: s[k] for k in ("micro_precision", "micro_recall", "micro_f1",
                                           "macro_f1")}
            res[name + "_per_code"] = {c: s["per_code"][c]["f1"] for c in
                                       ("SR", "SBRAD", "STACH", "1AVB", "CLBBB", "CRBBB", "LAFB")
                                       if c in s["per_code"]}
    return res


def markdown(res: dict, title: str) -> list[str]:
    lines = [f"{title}: {res['n']} reports; {res['n_flagged']} "
             f"({res['n_flagged'] / max(1, res['n']):.1%}) with at least one flag, "
             f"{res['n_corrected']} ({res['n_corrected'] / max(1, res['n']):.1%}) corrected.", "",
             "| statement | action | reports |", "|---|---|---|"]
    for (statement, action), n in sorted(res["fired"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {statement} | {action} | {n} |")
    if "generated" in res:
        lines += ["", "| reports | micro P | micro R | micro F1 | macro F1 |", "|---|---|---|---|---|"]
        for name in ("generated", "corrected"):
            s = res[name]
            lines.append(f"| {name} | {s['micro_precision']:.4f} | {s['micro_recall']:.4f} | "
                         f"{s['micro_f1']:.4f} | {s['macro_f1']:.4f} |")
        lines += ["", "| code | F1 generated | F1 corrected |", "|---|---|---|"]
        for code, f1 in res["generated_per_code"].items():
            lines.append(f"| {code} | {f1:.3f} | {res['corrected_per_code'][code]:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="an ecgreport batch output folder")
    parser.add_argument("--ptbxl", type=Path, default=None, help="PTB-XL folder (scores)")
    args = parser.parse_args(argv)
    print("\n".join(markdown(evaluate(args.out_dir, args.ptbxl), str(args.out_dir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
