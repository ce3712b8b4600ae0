"""Throughput of `ecgreport batch` against the read floor and PyTorch eager (issue 7).

    python benchmarks/throughput.py --data /work/data/ptb-xl --markdown docs/benchmarks.md

On the first ``--n`` records of a PTB-XL folder (``records100/NNNNN/*.hea``, symlinked
into a temporary folder), each repeat measures, in this order and on the same machine:

1. read floor: a plain loop of ``wfdb.rdsamp`` over the records (in this process);
2. ``ecgreport batch`` end to end, as a subprocess of the real CLI
   (``python -m ecgreport batch``), so interpreter start-up, imports and loading the
   bundle are counted; ``run.json``'s own wall time (without start-up) is shown beside it;
   2b. the same with ``--workers 1``: the model in the main process (two onnxruntime
   threads) instead of one single-threaded worker process per core;
3. PyTorch eager: the bundle's training checkpoint, ``greedy_generate`` (encode + greedy
   report) over the windows ``ecgreport batch`` feeds the model, ``--batch-size`` at a time;

   3b. onnxruntime: the bundle's ``ModelRunner`` (encode + greedy report) on the same windows.
4. / 4b. the encoder alone in both backends (report generation alone = 3 minus 4).

Rows 3 and 3b share preprocessed inputs (read once, untimed, one warm-up batch each), so
2/3 and 3b/3 separate reading and writing from model speed; the table also says how many
of the two rows' reports are identical. Records/s is the median over ``--repeats``.
Then, unless ``--skip-memory``, ``ecgreport batch`` runs once on 1,000 and once on 10,000
records and its peak RSS is compared: the sum of every process's own peak (main process
and workers, from ``run.json``; an upper bound, since forked workers share pages with the
main process), or without workers ``ru_maxrss`` through a small launcher (``LAUNCHER``).

The table goes to stdout (markdown), progress to stderr, and ``--markdown FILE`` writes it
with the machine description. Timings taken while something else uses the CPU are
flagged in the output (load average at the start).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ecgreport.onnx.runtime import sha256_file

MEMORY_SIZES = (1_000, 10_000)
MEMORY_TARGET = 1.10     # peak RSS at 10k within 10% of that at 1k
BATCH_TARGET = 1.0       # ecgreport batch / rdsamp loop
ORT_TARGET = 1.5         # onnxruntime / torch eager


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs


def find_headers(data: Path, n: int) -> list[Path]:
    """The first ``n`` headers of a PTB-XL folder in record order (``records100`` when it
    is there, else every ``.hea`` below ``data``)."""
    root = data / "records100" if (data / "records100").is_dir() else data
    headers = sorted(root.rglob("*.hea"))
    if len(headers) < n:
        raise SystemExit(f"error: {data} holds {len(headers)} records, fewer than the {n} asked")
    return headers[:n]


def link_folder(headers: list[Path], dest: Path) -> Path:
    """Symlink each record's files (``stem.*``: header and signal) flat into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for hea in headers:
        for f in hea.parent.glob(hea.stem + ".*"):
            os.symlink(f.resolve(), dest / f.name)
    return dest


def warm_page_cache(headers: list[Path]) -> None:
    """Read every file once so that all rows see the same (warm) page cache."""
    for hea in headers:
        for f in hea.parent.glob(hea.stem + ".*"):
            f.read_bytes()


# ---------------------------------------------------------------- rows


def time_rdsamp(headers: list[Path]) -> float:
    import wfdb

    started = time.perf_counter()
    for hea in headers:
        wfdb.rdsamp(str(hea.with_suffix("")))
    return time.perf_counter() - started


@dataclass
class BatchRun:
    wall_s: float                # as seen by the parent: start-up included
    inner_s: float               # run.json's wall_time_s: from run_batch's start to the end
    max_rss_mib: float           # the largest single process (the launcher's view)
    provider: str
    counts: dict
    workers: int = 0             # worker processes (0: the model ran in the main process)
    rss: dict = field(default_factory=dict)  # run.json's peak_rss_mib: main, workers, total


# Runs the batch command as its own child and reports that child's wall time and peak
# RSS. The extra process matters: Linux carries a process's peak RSS across fork and exec,
# so a child started straight from this (large: torch, inputs) process would report this
# process's peak; started from a small launcher, it reports its own.
LAUNCHER = """
import resource, subprocess, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
code = subprocess.run(cmd).returncode
wall = time.perf_counter() - started
with open(report, "w") as f:
    f.write(f"{wall!r} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(code)
"""


def run_cli_batch(folder: Path, out: Path, args, extra: tuple[str, ...] = ()) -> BatchRun:
    """``python -m ecgreport batch folder --out out`` in a child process: its wall time
    (start-up included) and peak RSS. ``out`` must be new: outputs are deleted only after
    all timings (see main), because deleting thousands of files keeps an ext4 disk busy
    (journal, discard) into the next timed run: that is the benchmark's own cleanup, not
    a cost of ecgreport."""
    cmd = [sys.executable, "-m", "ecgreport", "batch", str(folder), "--out", str(out),
           "--quiet", "--batch-size", str(args.batch_size), "--device", args.device, *extra]
    if args.model is not None:
        cmd += ["--model", str(args.model)]
    report = out.parent / f"{out.name}.rusage"
    done = subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *cmd],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          errors="replace")
    if done.returncode not in (0, 3):  # 3: some records failed, counted in the notes
        raise SystemExit(f"error: ecgreport batch exited with {done.returncode}: "
                         f"{done.stderr.strip()}\ncommand: {' '.join(cmd)}")
    wall, max_rss = report.read_text().split()
    report.unlink()
    run = json.loads((out / "run.json").read_text())
    rss_mib = int(max_rss) / (2**20 if sys.platform == "darwin" else 2**10)  # bytes or KiB
    return BatchRun(float(wall), float(run["wall_time_s"]), rss_mib,
                    run.get("execution_provider", ""), run.get("counts", {}),
                    int(run.get("worker_processes") or 0), run.get("peak_rss_mib") or {})


def preprocess(folder: Path, bundle) -> np.ndarray:
    """The windows ``ecgreport batch`` gives the model for the records in ``folder``:
    ``(n_windows, 12, window_samples)`` float32 (one window per 10 s PTB-XL record)."""
    from ecgreport.pipeline import RecordSpec, prepare_record  # the per-record step
    from ecgreport.records import find_records

    spec = RecordSpec(fs_hz=bundle.fs_hz, window_samples=bundle.window_samples, min_s=5.0,
                      max_windows=6, comments=False)  # ecgreport batch's defaults
    windows = []
    for ref in find_records(folder):
        item = prepare_record(ref, spec)
        if item.windows is not None:
            windows.append(item.windows)
    return np.concatenate(windows)


def batches(x: np.ndarray, size: int):
    for i in range(0, len(x), size):
        yield x[i:i + size]


class TorchEager:
    """The training checkpoint in PyTorch eager: ``greedy_generate`` per batch."""

    def __init__(self, checkpoint: Path, device: str, max_tokens: int):
        import torch

        from ecgreport.model.generate import greedy_generate
        from ecgreport.onnx.export import load_checkpoint

        self.torch, self.greedy = torch, greedy_generate
        model, tokenizer, _ = load_checkpoint(checkpoint)
        self.device = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
        self.note = (f"--device {device}: torch sees no CUDA device; row 3 ran on the CPU"
                     if device == "cuda" and self.device == "cpu" else None)
        self.model = model.to(self.device).eval()
        self.bos, self.eos, self.max_tokens = tokenizer.BOS, tokenizer.EOS, max_tokens

    def encode(self, x: np.ndarray, batch_size: int) -> None:
        with self.torch.inference_mode():
            for xb in batches(x, batch_size):
                self.model.encode(self.torch.from_numpy(xb).to(self.device))

    def __call__(self, x: np.ndarray, batch_size: int) -> list[list[int]]:
        ids = []
        for xb in batches(x, batch_size):
            xt = self.torch.from_numpy(xb).to(self.device)
            ids += self.greedy(self.model, xt, self.bos, self.eos, self.max_tokens)
        return ids


def run_ort(runner, x: np.ndarray, batch_size: int) -> list[list[int]]:
    ids = []
    for xb in batches(x, batch_size):
        ids += runner.generate_ids(runner.encode(xb))
    return ids


def run_ort_encode(runner, x: np.ndarray, batch_size: int) -> None:
    for xb in batches(x, batch_size):
        runner.encode(xb)


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


# ---------------------------------------------------------------- checkpoint


def find_checkpoint(bundle) -> tuple[Path | None, str]:
    """The training checkpoint the bundle was exported from, by the manifest's file name
    and sha256, looked for beside the bundle and in the training run's ``out`` folder.
    -> (path or None, a note saying where it was found or why not)."""
    recorded = bundle.manifest.get("checkpoint") or {}
    name, sha = recorded.get("file"), recorded.get("sha256")
    if not name:
        return None, "the bundle's manifest names no checkpoint"
    places = [bundle.path, bundle.path.parent]
    out = (bundle.manifest.get("train_config") or {}).get("out")
    if out:
        places.insert(0, Path(out))
    for place in places:
        candidate = place / name
        if candidate.is_file():
            if sha and sha256_file(candidate) != sha:
                continue  # a later checkpoint of the same name: not the exported model
            return candidate, f"found {candidate} (sha256 matches the manifest)"
    where = ", ".join(str(p) for p in places)
    return None, (f"checkpoint {name} with the manifest's sha256 not found in {where}; "
                  "pass --checkpoint")


# ---------------------------------------------------------------- machine


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["os"] = platform.platform()
    info["python"] = platform.python_version()
    versions = {}
    for module in ("numpy", "scipy", "wfdb", "onnxruntime", "torch"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    info["versions"] = versions
    info["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return info


def gpu_name(device: str) -> str | None:
    if device == "cpu":
        return None
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        return None


# ---------------------------------------------------------------- report


@dataclass
class Results:
    n: int
    repeats: int
    batch_size: int
    rows: dict[str, list[float]] = field(default_factory=dict)   # row -> seconds per repeat
    batch_inner_s: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory: dict[int, BatchRun] = field(default_factory=dict)    # n -> the run (peak RSS)
    workers: int = 0
    provider: str = ""
    torch_device: str = ""
    same_reports: tuple[int, int] | None = None

    def rate(self, row: str) -> float | None:
        times = self.rows.get(row)
        return statistics.median(self.n / t for t in times) if times else None


ROWS = [("rdsamp", "1. read floor: `wfdb.rdsamp` loop"),
        ("batch", "2. `ecgreport batch` end to end (subprocess of the CLI)"),
        ("batch1", "2b. the same with `--workers 1` (model in one process, 2 onnxruntime threads)"),
        ("torch", "3. PyTorch eager: encode + greedy report"),
        ("ort", "3b. onnxruntime: encode + greedy report"),
        ("torch_enc", "4. PyTorch eager: encoder only"),
        ("ort_enc", "4b. onnxruntime: encoder only")]


def render(res: Results, info: dict, args) -> str:
    def fmt(v, spec=".1f"):
        return "n/a" if v is None else format(v, spec)

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    lines = ["# Throughput benchmark", "",
             f"`python benchmarks/throughput.py --data {args.data} --n {res.n} --repeats "
             f"{res.repeats} --batch-size {res.batch_size} --device {args.device}` "
             f"({info['date']}). Records/s is the median of "
             f"{res.repeats} repeat(s) over the first {res.n:,} PTB-XL records (100 Hz, 12 "
             "leads, 10 s: one window each); page cache warm.", "",
             "| row | records/s | seconds per repeat |", "|---|---:|---|"]
    for key, label in ROWS:
        times = res.rows.get(key)
        lines.append(f"| {label} | {fmt(res.rate(key))} | "
                     f"{', '.join(f'{t:.2f}' for t in times) if times else 'skipped'} |")
    if res.batch_inner_s:
        inner = statistics.median(res.n / t for t in res.batch_inner_s)
        lines.append(f"| 2'. the same runs, `run.json` wall time (no interpreter start-up) | "
                     f"{inner:.1f} | {', '.join(f'{t:.2f}' for t in res.batch_inner_s)} |")
    r21 = ratio(res.rate("batch"), res.rate("rdsamp"))
    r23 = ratio(res.rate("batch"), res.rate("torch"))
    r3b3 = ratio(res.rate("ort"), res.rate("torch"))
    r4b4 = ratio(res.rate("ort_enc"), res.rate("torch_enc"))
    # Report generation alone: the median time of encode + report minus that of encode.
    gen = {}
    for key in ("torch", "ort"):
        if res.rows.get(key) and res.rows.get(f"{key}_enc"):
            gen[key] = res.n / (statistics.median(res.rows[key]) - statistics.median(res.rows[f"{key}_enc"]))
    rgen = ratio(gen.get("ort"), gen.get("torch"))

    def verdict(v, target):
        return "" if v is None else (" (target met)" if v >= target else " (target missed)")

    lines += ["", "| ratio | value | target |", "|---|---:|---|",
              f"| 2/1 batch / rdsamp loop | {fmt(r21, '.2f')}x{verdict(r21, BATCH_TARGET)} "
              f"| >= {BATCH_TARGET:.1f}x |",
              f"| 2/3 batch / PyTorch eager model | {fmt(r23, '.2f')}x | (information) |",
              f"| 3b/3 onnxruntime / PyTorch eager | {fmt(r3b3, '.2f')}x"
              f"{verdict(r3b3, ORT_TARGET)} | >= {ORT_TARGET:.1f}x |",
              f"| 4b/4 encoder only: onnxruntime / PyTorch eager | {fmt(r4b4, '.2f')}x | (information) |",
              f"| report generation only (3 minus 4): onnxruntime {fmt(gen.get('ort'))} / PyTorch eager "
              f"{fmt(gen.get('torch'))} records/s | {fmt(rgen, '.2f')}x | (information) |"]
    if res.same_reports is not None:
        lines += ["", f"Reports identical between rows 3 and 3b: {res.same_reports[0]:,} of "
                  f"{res.same_reports[1]:,} windows."]
    r2b = ratio(res.rate("batch"), res.rate("batch1"))
    if r2b is not None:
        lines.insert(lines.index("| ratio | value | target |") + 3,
                     f"| 2/2b worker processes ({res.workers}) / one process | {r2b:.2f}x | (information) |")
    if res.memory:
        def total(run: BatchRun) -> float:  # every process's peak, summed (an upper bound)
            return float(run.rss.get("total") or run.max_rss_mib)

        lines += ["", "| `ecgreport batch` on | peak RSS, main process (MiB) | peak RSS of each "
                  "worker (MiB) | sum (MiB) |", "|---|---:|---|---:|"]
        lines += [f"| {n:,} records | {run.rss.get('main', run.max_rss_mib):.0f} | "
                  f"{', '.join(f'{w:.0f}' for w in run.rss.get('workers', [])) or 'none'} | "
                  f"{total(run):.0f} |" for n, run in sorted(res.memory.items())]
        if len(res.memory) >= 2:
            sizes = sorted(res.memory)
            growth = total(res.memory[sizes[-1]]) / total(res.memory[sizes[0]])
            lines.append(f"| ratio {sizes[-1]:,} / {sizes[0]:,} | {growth:.3f} "
                         f"({'within' if growth <= MEMORY_TARGET else 'over'} the "
                         f"{MEMORY_TARGET - 1:.0%} target) |")
    else:
        lines += ["", "Peak memory: skipped (`--skip-memory`)."]
    v = info["versions"]
    gpu = info.get("gpu")
    lines += ["", "## Machine", "",
              f"- CPU: {info['cpu']}, {info['cores']} logical cores ({info['usable_cores']} usable)"
              f", {info.get('ram_gib', '?')} GiB RAM" + (f"; GPU: {gpu}" if gpu else ""),
              f"- {info['os']}, Python {info['python']}",
              f"- numpy {v['numpy']}, scipy {v['scipy']}, wfdb {v['wfdb']}, "
              f"onnxruntime {v['onnxruntime']}, torch {v['torch']}",
              f"- `--device {args.device}`: onnxruntime provider {res.provider or 'n/a'}, "
              f"torch device {res.torch_device or 'n/a'}; batch size {res.batch_size} windows; "
              f"row 2: {res.workers or 'no'} worker process(es), one onnxruntime thread each",
              f"- model: {info['bundle']}",
              f"- load average (1 min) at the start: {info['load_avg_1min']}, "
              f"at the end: {info.get('load_avg_end', '?')}"]
    if res.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in res.notes]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Table on stdout, progress on stderr.",
        epilog="Example: python benchmarks/throughput.py --data /work/data/ptb-xl "
               "--markdown docs/benchmarks.md")
    parser.add_argument("--data", type=Path, required=True,
                        help="a restored PTB-XL folder (with records100/)")
    parser.add_argument("--n", type=int, default=2000, help="records per timed run (2000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; the median is shown (3)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model bundle (default: the bundled default model)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the bundle's training checkpoint for the PyTorch row (default: "
                             "found by the manifest's file name and sha256; skipped if not)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per model call (64)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="passed to ecgreport batch, onnxruntime and torch (auto: CUDA "
                             "where usable, as ecgreport batch does)")
    parser.add_argument("--skip-memory", action="store_true",
                        help="skip the peak-memory runs on 1,000 and 10,000 records")
    parser.add_argument("--memory-sizes", default=",".join(map(str, MEMORY_SIZES)),
                        help="record counts of the peak-memory runs (1000,10000)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the table and machine description to this file")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the record links and outputs go (a temporary folder)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--n, --repeats and --batch-size must be at least 1")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    try:
        memory_sizes = sorted({int(n) for n in args.memory_sizes.split(",")})
    except ValueError:
        parser.error(f"--memory-sizes takes counts like 1000,10000, not {args.memory_sizes!r}")

    from ecgreport.errors import BundleError
    from ecgreport.onnx.runtime import ModelRunner, default_bundle_path, load_bundle

    try:
        bundle = load_bundle(args.model if args.model is not None else default_bundle_path())
    except BundleError as err:
        raise SystemExit(f"error: {err}") from None
    info = machine()
    info["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info["bundle"] = f"{bundle.path} (manifest sha256 {bundle.manifest_sha256[:12]})"
    info["gpu"] = gpu_name(args.device)
    res = Results(args.n, args.repeats, args.batch_size)
    busy = info["load_avg_1min"] > 0.5
    if busy:
        res.notes.append(f"load average {info['load_avg_1min']} at the start: another process "
                         "was using the CPU, so these figures are measured under load.")
        log(f"warning: load average {info['load_avg_1min']}: timings will be measured under load")

    checkpoint, note = (args.checkpoint, f"--checkpoint {args.checkpoint}") \
        if args.checkpoint is not None else find_checkpoint(bundle)
    if checkpoint is None:
        res.notes.append(f"row 3 (PyTorch eager) skipped: {note}.")
        log(f"PyTorch row skipped: {note}")
    else:
        res.notes.append(f"row 3 checkpoint: {note}.")
        sha = (bundle.manifest.get("checkpoint") or {}).get("sha256")
        if args.checkpoint is not None and sha and sha256_file(checkpoint) != sha:
            res.notes.append(f"{checkpoint}'s sha256 differs from the one in the bundle's "
                             "manifest: row 3 may not be the same model.")

    work = Path(tempfile.mkdtemp(prefix="ecgreport-bench-", dir=args.workdir))
    try:
        headers = find_headers(args.data, args.n)
        folder = link_folder(headers, work / f"records-{args.n}")
        log(f"{args.n} records linked into {folder}; warming the page cache")
        warm_page_cache(headers)

        runner = ModelRunner(bundle, device=args.device)
        res.provider = runner.provider
        x = preprocess(folder, bundle)
        torch_model = None
        if checkpoint is not None:
            try:
                torch_model = TorchEager(checkpoint, args.device, runner.max_tokens)
            except ImportError as err:
                res.notes.append(f"row 3 (PyTorch eager) skipped: {err} "
                                 "(pip install 'ecgreport[train]').")
        if torch_model is not None:
            res.torch_device = (f"{torch_model.device} ({torch_model.torch.get_num_threads()} "
                                "threads)")
            if torch_model.note:
                res.notes.append(torch_model.note + ".")
            torch_model(x[:args.batch_size], args.batch_size)     # warm-up, untimed
        if runner.note:
            res.notes.append(f"onnxruntime: {runner.note}.")
        run_ort(runner, x[:args.batch_size], args.batch_size)     # warm-up, untimed
        if len(x) != args.n:
            res.notes.append(f"rows 3 and 3b: {len(x)} windows from {args.n} records.")

        for repeat in range(1, args.repeats + 1):
            log(f"repeat {repeat}/{args.repeats}: rdsamp loop")
            res.rows.setdefault("rdsamp", []).append(time_rdsamp(headers))
            log(f"repeat {repeat}/{args.repeats}: ecgreport batch")
            run = run_cli_batch(folder, work / f"out-{repeat}", args)
            res.rows.setdefault("batch", []).append(run.wall_s)
            res.batch_inner_s.append(run.inner_s)
            res.workers = run.workers
            if run.counts.get("failed"):
                res.notes.append(f"ecgreport batch: {run.counts['failed']} record(s) failed")
            log(f"repeat {repeat}/{args.repeats}: ecgreport batch --workers 1")
            res.rows.setdefault("batch1", []).append(
                run_cli_batch(folder, work / f"out-{repeat}-workers1", args, ("--workers", "1")).wall_s)
            if torch_model is not None:
                log(f"repeat {repeat}/{args.repeats}: PyTorch eager")
                seconds, torch_ids = timed(torch_model, x, args.batch_size)
                res.rows.setdefault("torch", []).append(seconds)
            log(f"repeat {repeat}/{args.repeats}: onnxruntime")
            seconds, ort_ids = timed(run_ort, runner, x, args.batch_size)
            res.rows.setdefault("ort", []).append(seconds)
            if torch_model is not None:
                res.rows.setdefault("torch_enc", []).append(timed(torch_model.encode, x, args.batch_size)[0])
            res.rows.setdefault("ort_enc", []).append(timed(run_ort_encode, runner, x, args.batch_size)[0])
        if torch_model is not None:
            res.same_reports = (sum(a == b for a, b in zip(torch_ids, ort_ids)), len(ort_ids))
        del x, torch_model

        if not args.skip_memory:
            all_headers = find_headers(args.data, max(memory_sizes))
            for n in memory_sizes:
                log(f"peak memory: ecgreport batch on {n:,} records")
                mem_folder = link_folder(all_headers[:n], work / f"records-{n}")
                res.memory[n] = run_cli_batch(mem_folder, work / f"out-{n}", args)
                shutil.rmtree(work / f"out-{n}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    info["load_avg_end"] = round(os.getloadavg()[0], 2)
    text = render(res, info, args)
    print(text, end="")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
