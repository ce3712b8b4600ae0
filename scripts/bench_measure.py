"""Cost of ``measure_ecg`` per record, this tree against another revision, in one run.

The other revision's ``ecgreport/measure/intervals.py`` (``git show REV:...``) and this
tree's are timed alternately on the same LUDB records (12 leads, 10 s) at 500 Hz and
resampled to 100 Hz; the best of ``--repeats`` passes each, and the ratio after / before.

    OMP_NUM_THREADS=1 nice python scripts/bench_measure.py --before main
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from ecgreport.measure import intervals as after  # noqa: E402


def load_revision(rev: str):
    """The module ``ecgreport/measure/intervals.py`` as it is at git revision ``rev``."""
    text = subprocess.run(["git", "show", f"{rev}:ecgreport/measure/intervals.py"], cwd=REPO,
                          check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "intervals_before.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("intervals_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["intervals_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision to compare against")
    parser.add_argument("--ludb", type=Path, default=REPO.parent / "shared" / "data" / "ludb")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    from scipy.signal import resample_poly
    from validate_measurements import STD_LEADS, ludb_records, read_ludb_signal

    before = load_revision(args.before)
    signals = [read_ludb_signal(rec)[0] for rec in ludb_records(args.ludb)]
    for fs in (500, 100):
        batch = signals if fs == 500 else [resample_poly(x, 1, 5, axis=1) for x in signals]
        best = {"before": float("inf"), "after": float("inf")}
        for rep in range(args.repeats):
            order = [("before", before), ("after", after)]
            for name, module in order if rep % 2 else order[::-1]:
                started = time.perf_counter()
                for x in batch:
                    module.measure_ecg(x, fs, STD_LEADS)
                best[name] = min(best[name], (time.perf_counter() - started) / len(batch))
        ratio = best["after"] / best["before"]
        print(f"{fs} Hz, {len(batch)} records: before ({args.before}) "
              f"{1000 * best['before']:.3f} ms, after {1000 * best['after']:.3f} ms per record, "
              f"ratio {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
