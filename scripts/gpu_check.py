"""Device check of the GPU path (issue 15): does CUDA run the bundled model to the CPU's numbers?

    scripts/gpu_check.sh                  # installs what is missing, then runs this
    python scripts/gpu_check.py           # in an environment that has ecgreport and onnxruntime-gpu

On a machine with an NVIDIA GPU, in a few minutes, each check is one row of a table
(markdown, on stdout; progress on stderr):

1. the GPU and what CUDA needs are present, and the runner really runs on the CUDA
   provider (not onnxruntime's silent CPU fallback) with use_tf32=0 and HEURISTIC;
2. the records of the fixtures (and sample_ecgs/), preprocessed as `ecgreport batch` does,
   give the CPU's embeddings (largest relative difference, limit 1e-4: the export's
   parity tolerance) and cross-attention caches;
3. the first decoder step from the zero-length past cache gives the CPU's logits, through
   I/O binding and through plain numpy feeds to the CUDA session;
4. greedy reports: identical to the CPU's, or the count that differ and, for each, the
   CPU's logit margin between the two tokens where they part (a near-tie, under 1e-3,
   explains it; anything else fails);
5. beam search (3 beams), and the selection of rows on the device (one window per record);
6. a batch of many windows (--windows, default 512) in one encode and greedy decode: the
   same embeddings, reports, and the windows/s of each device;
7. `ecgreport batch --device cuda` on the fixtures: exit 0, stdout empty, run.json says
   CUDA with the explicit options, reports equal to a `--device cpu --workers 1` run;
8. benchmarks/throughput.py --device cuda on the PTB-XL fixture records: its records/s rows.

Exit 0: every check passed; 1: one failed (its row says why); 77: no NVIDIA GPU here,
nothing checked. ``--self-test`` runs everything on the CPU (the "GPU" side is the CPU
provider with I/O binding) to check this script itself; it proves nothing about a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgreport.onnx import providers  # noqa: E402
from ecgreport.onnx.runtime import ModelRunner, load_bundle  # noqa: E402
from ecgreport.reports import repeated_ngram_bans  # noqa: E402

NO_GPU = 77         # the automake/meson "skipped" code: nothing could be checked here
EMBED_RTOL = 1e-4   # the export's parity tolerance (PyTorch vs onnxruntime on the CPU)
NEAR_TIE = 1e-3     # logit margin under which a flipped greedy token is a near-tie


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Table:
    rows: list[tuple[str, bool | None, str]] = field(default_factory=list)

    def add(self, check: str, ok: bool | None, detail: str) -> bool | None:
        self.rows.append((check, ok, detail))
        log(f"{'PASS' if ok else 'info' if ok is None else 'FAIL'}  {check}: {detail}")
        return ok

    @property
    def failed(self) -> int:
        return sum(ok is False for _, ok, _ in self.rows)

    def render(self, title: str) -> str:
        lines = [f"## {title}", "", "| check | result | detail |", "|---|---|---|"]
        for check, ok, detail in self.rows:
            result = "PASS" if ok else ("info" if ok is None else "**FAIL**")
            lines.append(f"| {check} | {result} | {detail.replace('|', '/')} |")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the machine


def gpu_description() -> tuple[str | None, str]:
    """(the GPUs nvidia-smi lists, or None when there is no usable NVIDIA GPU; why not)."""
    if shutil.which("nvidia-smi"):
        proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        gpus = [line.strip() for line in proc.stdout.splitlines() if line.startswith("GPU ")]
        if proc.returncode == 0 and gpus:
            return "; ".join(gpus), ""
        return None, f"nvidia-smi lists no GPU ({(proc.stderr or proc.stdout).strip()[:120]})"
    if not providers._cuda_driver_present():
        return None, "no NVIDIA driver (no nvidia-smi, no libcuda.so.1)"
    problem = providers._driver_problem(None)
    return (None, problem) if problem else ("an NVIDIA GPU (nvidia-smi not found)", "")


# ---------------------------------------------------------------- inputs


def fixture_folders(fixtures: Path | None) -> list[Path]:
    """WFDB folders to check on: --fixtures (default: shared/data/fixtures beside or in the
    repository), and the repository's own sample_ecgs/."""
    candidates = [fixtures] if fixtures else [ROOT.parent / "shared" / "data" / "fixtures",
                                              ROOT / "shared" / "data" / "fixtures"]
    found = [p for p in candidates if p and p.is_dir()][:1]
    return found + [ROOT / "sample_ecgs"]


def batch_windows(folders: list[Path], bundle) -> tuple[np.ndarray, list[int]]:
    """Every window of every record, preprocessed by the batch's own code:
    (n_windows, 12, window) float32, and each record's window count."""
    from ecgreport.pipeline import RecordSpec, prepare_record
    from ecgreport.records import find_records

    spec = RecordSpec(fs_hz=float(bundle.fs_hz), window_samples=int(bundle.window_samples),
                      min_s=5.0, max_windows=6, comments=False)
    windows, counts = [], []
    for folder in folders:
        for ref in find_records(folder):
            item = prepare_record(ref, spec)
            if item.windows is not None:
                windows.append(item.windows)
                counts.append(len(item.windows))
    return np.concatenate(windows), counts


def max_rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Largest per-row ||got - want|| / ||want|| (rows: the first axis)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    num = np.linalg.norm((got - want).reshape(len(want), -1), axis=1)
    den = np.maximum(np.linalg.norm(want.reshape(len(want), -1), axis=1), 1e-12)
    return float((num / den).max()) if len(want) else 0.0


# ---------------------------------------------------------------- reports


def divergence_margin(cpu: ModelRunner, enc_cpu, row: int, a: list[int], b: list[int]) -> float:
    """Where greedy sequences ``a`` (device) and ``b`` (CPU) of window ``row`` first differ,
    the CPU's logit margin between the two tokens (after the same trigram bans)."""
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    prefix = b[:k]
    one = enc_cpu.take([row])
    past = cpu._empty_past(1)
    token = np.array([cpu._bos], np.int64)
    for t in [None, *prefix]:
        if t is not None:
            token = np.array([t], np.int64)
        logits, past = cpu._step(token, past, one.cross)
    logits = logits[0].astype(np.float64)
    bans = repeated_ngram_bans(prefix)
    if bans:
        logits[bans] = -np.inf
    ta = a[k] if k < len(a) else cpu._eos
    tb = b[k] if k < len(b) else cpu._eos
    return float(abs(logits[ta] - logits[tb]))


def compare_reports(table: Table, name: str, cpu, enc_cpu, got: list, want: list, margins=True) -> None:
    same = sum(g == w for g, w in zip(got, want))
    differ = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    if not differ:
        table.add(name, True, f"{same}/{len(want)} identical")
        return
    if not margins:
        table.add(name, False, f"{same}/{len(want)} identical; differ: rows {differ[:10]}")
        return
    ms = [divergence_margin(cpu, enc_cpu, i, got[i], want[i]) for i in differ]
    ties = sum(m < NEAR_TIE for m in ms)
    table.add(name, ties == len(ms),
              f"{same}/{len(want)} identical; {len(ms)} differ, {ties} of them at a near-tie "
              f"(CPU logit margin < {NEAR_TIE:g} where they part; margins {', '.join(f'{m:.2g}' for m in ms[:8])})")


# ---------------------------------------------------------------- the checks


def check_runner(table: Table, args, bundle) -> ModelRunner | None:
    if args.self_test:
        gpu = ModelRunner(bundle, device="cpu", io_binding=True)
        table.add("runner (self-test)", gpu.io_binding is True, "CPU provider with I/O binding stands in for CUDA")
        return gpu
    why = providers.cuda_missing_piece()
    if why is not None:
        table.add("CUDA libraries", False, why)
        return None
    table.add("CUDA libraries", True, "driver, CUDA runtime, cuBLAS, cuDNN load")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # onnxruntime prints its fallback banner there
        gpu = ModelRunner(bundle, device="cuda", warmup_rows=args.batch_size)
    table.add("stdout while starting CUDA", printed.getvalue() == "",
              f"{len(printed.getvalue())} characters printed{': ' + printed.getvalue()[:200] if printed.getvalue() else ''}")
    sessions = {"encoder": gpu._enc, "decoder": gpu._dec, "row gather": getattr(gpu._gather, "_session", None)}
    on_cuda = {k: s.get_providers()[0] if s is not None else None for k, s in sessions.items()}
    ok = gpu.provider == providers.CUDA and all(v == providers.CUDA for v in on_cuda.values())
    table.add("provider is CUDA", ok, f"{on_cuda}; note: {gpu.note or 'none'}")
    table.add("provider options", gpu.provider_options == providers.CUDA_OPTIONS,
              f"session reports {gpu.provider_options}")
    table.add("I/O binding on", bool(gpu.io_binding), "caches stay on the device")
    return gpu if ok else None


def check_model(table: Table, args, bundle, gpu: ModelRunner, cpu: ModelRunner) -> dict:
    timings = {}
    x, counts = batch_windows(fixture_folders(args.fixtures), bundle)
    log(f"{len(counts)} records, {len(x)} windows")
    eg, ec = gpu.encode(x), cpu.encode(x)
    d = max_rel_diff(eg.embedding, ec.embedding)
    table.add("embeddings", d <= EMBED_RTOL, f"{len(x)} windows of {len(counts)} records: largest relative "
              f"difference {d:.2e} (limit {EMBED_RTOL:g})")
    if not args.self_test:
        table.add("cross cache on the device", not any(isinstance(c, np.ndarray) for c in eg.cross),
                  "encoder outputs bound to the device (no host round trip)")
    dc = max(max_rel_diff(g, c) for g, c in zip(eg.host_cross(), ec.cross))
    table.add("cross-attention cache", dc <= EMBED_RTOL, f"largest relative difference {dc:.2e}")

    # the first step, from the zero-length past, through I/O binding and through numpy feeds
    bos = np.full(len(x), gpu._bos, np.int64)
    want, _ = cpu._step(bos, cpu._empty_past(len(x)), ec.cross)
    got, _ = gpu._step(bos, gpu._empty_past(len(x)), eg.cross)
    plain = ModelRunner(bundle, device="cpu" if args.self_test else "cuda", io_binding=False)
    got_plain, _ = plain._step(bos, plain._empty_past(len(x)), plain.encode(x).cross)
    d1, d2 = max_rel_diff(got, want), max_rel_diff(got_plain, want)
    plain_ok = args.self_test or plain.provider == providers.CUDA
    table.add("zero-length past, first step", max(d1, d2) <= EMBED_RTOL and plain_ok,
              f"logits vs CPU: I/O binding {d1:.2e}, numpy feeds ({plain.provider}) {d2:.2e}")

    greedy_cpu = cpu.generate_ids(ec)
    compare_reports(table, "greedy reports", cpu, ec, gpu.generate_ids(eg), greedy_cpu)
    starts = np.cumsum([0] + counts[:-1])
    rows = [int(s + c - 1) for s, c in zip(starts, counts)]  # each record's last window: a device gather
    compare_reports(table, "greedy, rows selected on the device", cpu, ec.take(rows),
                    gpu.generate_ids(eg.take(rows)), cpu.generate_ids(ec.take(rows)))
    n_beam = min(len(x), args.beam_windows)
    compare_reports(table, f"beam search (3 beams, {n_beam} windows)", cpu, ec,
                    gpu.generate_ids(eg.take(range(n_beam)), beams=3),
                    cpu.generate_ids(ec.take(range(n_beam)), beams=3), margins=False)

    # many windows at once: the fixtures' windows repeated to --windows
    big = np.concatenate([x] * (args.windows // len(x) + 1))[:args.windows]
    log(f"{len(big)} windows in one batch")
    for name, runner in (("device", gpu), ("cpu", cpu)):
        runner.generate_ids(runner.encode(big[:args.batch_size]))  # warm-up at the batch size
        started = time.perf_counter()
        enc = runner.encode(big)
        ids = runner.generate_ids(enc)
        timings[name] = (time.perf_counter() - started, enc, ids)
    (tg, big_g, ids_g), (tc, big_c, ids_c) = timings["device"], timings["cpu"]
    d = max_rel_diff(big_g.embedding, big_c.embedding)
    table.add(f"{len(big)} windows in one batch: embeddings", d <= EMBED_RTOL, f"largest relative difference {d:.2e}")
    compare_reports(table, f"{len(big)} windows in one batch: greedy reports", cpu, big_c, ids_g, ids_c)
    table.add(f"{len(big)} windows, encode + greedy", None,
              f"{gpu.provider}: {len(big) / tg:.0f} windows/s; CPU ({cpu.provider}, "
              f"{os.cpu_count()} cores): {len(big) / tc:.0f} windows/s")
    return timings


def check_batch_cli(table: Table, args, work: Path) -> None:
    """`ecgreport batch` as a user runs it: on the GPU, and on the CPU for the reports."""
    folder = fixture_folders(args.fixtures)[0]
    device = "cpu" if args.self_test else "cuda"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    runs = {}
    for name, extra in (("device", ["--device", device]), ("cpu", ["--device", "cpu", "--workers", "1"])):
        out = work / f"batch-{name}"
        proc = subprocess.run([sys.executable, "-m", "ecgreport", "batch", str(folder), "--out", str(out), *extra],
                              capture_output=True, text=True, env=env, cwd=work)
        runs[name] = (proc, out)
    proc, out = runs["device"]
    if proc.returncode != 0 or not (out / "run.json").is_file():
        table.add(f"ecgreport batch --device {device}", False, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return
    run = json.loads((out / "run.json").read_text())
    want_provider = "CPUExecutionProvider" if args.self_test else providers.CUDA
    want_options = {} if args.self_test else providers.CUDA_OPTIONS
    ok = (run["execution_provider"] == want_provider and run.get("execution_provider_options") == want_options
          and proc.stdout == "" and run["counts"]["failed"] == 0)
    table.add(f"ecgreport batch --device {device}", ok,
              f"exit {proc.returncode}, stdout {len(proc.stdout)} bytes, {run['counts']['ok']} ok, provider "
              f"{run['execution_provider']}, options {run.get('execution_provider_options')}, note: "
              f"{run.get('execution_note') or 'none'}")

    def reports(path: Path) -> dict:
        lines = (path / "records.jsonl").read_text(encoding="utf-8").splitlines()
        return {e["record_id"]: e["report"] for e in map(json.loads, lines)}

    if runs["cpu"][0].returncode == 0:
        got, want = reports(out), reports(runs["cpu"][1])
        same = sum(got.get(k) == v for k, v in want.items())
        table.add("batch reports vs --device cpu", same == len(want), f"{same}/{len(want)} identical")
    else:
        table.add("batch reports vs --device cpu", False, f"the CPU run failed: {runs['cpu'][0].stderr[-300:]}")


def check_throughput(table: Table, args, work: Path) -> None:
    folders = fixture_folders(args.fixtures)
    data = next((f / "ptb-xl-mini" for f in folders if (f / "ptb-xl-mini").is_dir()), folders[-1])
    n = len(list((data / "records100" if (data / "records100").is_dir() else data).rglob("*.hea")))
    device = "cpu" if args.self_test else "cuda"
    md = work / "throughput.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--data", str(data), "--n", str(n),
           "--repeats", str(args.repeats), "--skip-memory", "--device", device, "--markdown", str(md)]
    log("running " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0 or not md.is_file():
        table.add("benchmarks/throughput.py", False, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return
    text = md.read_text(encoding="utf-8")
    provider = re.search(r"onnxruntime provider (\w+)", text)
    want = "CPUExecutionProvider" if args.self_test else providers.CUDA
    table.add(f"benchmarks/throughput.py --device {device} ({n} records)",
              bool(provider) and provider.group(1) == want,
              f"onnxruntime provider {provider.group(1) if provider else '?'}"
              + (f"; full table: {args.keep / 'throughput.md'}" if args.keep else ""))
    for match in re.finditer(r"^\| (\d+b?'?\. [^|]+?) \| ([\d.]+|n/a) \|", text, re.MULTILINE):
        table.add(f"throughput: {match.group(1)}", None, f"{match.group(2)} records/s")
    if args.keep:
        shutil.copy(md, Path(args.keep) / "throughput.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Exit 0: all passed; 1: a check failed; 77: no NVIDIA GPU here.")
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: the bundled model)")
    parser.add_argument("--fixtures", type=Path, default=None,
                        help="WFDB fixtures folder (default: shared/data/fixtures beside the repository)")
    parser.add_argument("--windows", type=int, default=512, help="windows of the many-window batch (512)")
    parser.add_argument("--batch-size", type=int, default=64, help="the batch's windows per encode (64)")
    parser.add_argument("--beam-windows", type=int, default=16, help="windows decoded with beam search (16)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput.py repeats (3)")
    parser.add_argument("--skip-throughput", action="store_true", help="do not run benchmarks/throughput.py")
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder for the table (gpu_check.md) and throughput.md (default: not kept)")
    parser.add_argument("--self-test", action="store_true",
                        help="run every check on the CPU (I/O binding on the CPU provider) to test this "
                             "script; proves nothing about a GPU")
    args = parser.parse_args(argv)

    gpus, why = gpu_description()
    if gpus is None and not args.self_test:
        log(f"gpu_check: no NVIDIA GPU on this machine ({why}); nothing was checked. "
            "Run scripts/gpu_check.sh on a machine with an NVIDIA GPU and driver.")
        return NO_GPU
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    table = Table()
    table.add("machine", None, f"{gpus or 'no GPU (self-test)'}; onnxruntime {onnxruntime.__version__} "
                               f"({getattr(onnxruntime.capi.build_and_package_info, 'cuda_version', None) or 'no'} CUDA build)")
    bundle = load_bundle(args.model)
    work = Path(tempfile.mkdtemp(prefix="ecgreport-gpu-check-"))
    try:
        gpu = check_runner(table, args, bundle)
        if gpu is not None:
            cpu = ModelRunner(bundle, device="cpu")
            check_model(table, args, bundle, gpu, cpu)
            check_batch_cli(table, args, work)
            if not args.skip_throughput:
                check_throughput(table, args, work)
    except Exception as err:  # a crash is a failed check, with its reason in the table
        table.add("unexpected error", False, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    title = ("gpu_check SELF-TEST on the CPU (proves nothing about a GPU)" if args.self_test
             else "gpu_check: the GPU path against the CPU")
    text = table.render(title) + f"\n{len(table.rows)} rows, {table.failed} failed.\n"
    print(text, end="")
    if args.keep:
        (args.keep / "gpu_check.md").write_text(text, encoding="utf-8")
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
