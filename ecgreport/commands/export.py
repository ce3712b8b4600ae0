"""`ecgreport export-onnx`: a training checkpoint -> the ONNX bundle that `batch` runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ecgreport.errors import BundleError, DataError, ExitCode


def read_labels(path: Path):
    """The one call into the label-CSV parser (label,description[,more prompts])."""
    from ecgreport.prompts import read_label_csv

    return read_label_csv(path)


def parse_label_option(text: str) -> tuple[str, Path]:
    """'name=file.csv' -> ('name', Path('file.csv')); a file alone is the set 'custom'."""
    name, sep, path = text.partition("=")
    if not sep:
        return "custom", Path(text)
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"--labels {text!r}: a set's name is letters, digits, '_', '-' or '.' (NAME=FILE.csv)")
    return name, Path(path)


def _parity_inputs(folders: list[Path], window: int, fs_hz: float, n_max: int = 16):
    """Real records for the parity check (first window of each), else seeded noise."""
    import numpy as np

    from ecgreport.records import find_records, read_record
    from ecgreport.signal.preprocess import model_window

    xs = []
    for folder in folders:
        for ref in find_records(folder):
            try:
                rec = read_record(ref)
            except Exception:  # noqa: BLE001 - any readable record will do
                continue
            xs.append(model_window(rec.signal_mv, rec.fs_hz, fs_hz, window))
            if len(xs) >= n_max:
                return np.stack(xs), "records"
    if xs:
        return np.stack(xs), "records"
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8, 12, window)) * 0.3).astype(np.float32), "synthetic noise"


def _dataset_parity_inputs(data_dir: Path, window: int, fs_hz: float, n_max: int = 16):
    """The first n_max readable records of the training dataset (any split), or None."""
    from ecgreport.dataset.format import open_dataset
    from ecgreport.training.data import load_split

    try:
        ds = open_dataset(data_dir)
        splits = sorted(ds.split_counts())
        data = load_split(ds, splits, fs_hz, window, limit=n_max, require_report=False)
    except DataError:
        return None
    return data.signals, f"records of {ds.name}"


def export_onnx(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (RUN/best.pt).", exists=True, dir_okay=False),
    out: Path = typer.Option(Path("export"), "--out", "-o", help="Bundle folder to write (replaced only after its checks pass)."),
    scp_statements: Optional[Path] = typer.Option(None, help="PTB-XL scp_statements.csv for PTB-XL's label sets (superclass, subclass, form, rhythm); default: the one in the training dataset's folder, if any."),
    labels: list[str] = typer.Option([], "--labels", help="Your own label set, NAME=FILE.csv (columns label,description[,more prompts]); repeat for several. A FILE alone is the set 'custom'. Default: the training dataset's labels/*.csv."),
    check_records: list[Path] = typer.Option([], "--check-records", help="Folder(s) of WFDB records for the PyTorch-vs-ONNX parity check (default: the training dataset's first 16 records)."),
    rtol: float = typer.Option(1e-4, help="Largest relative embedding difference the parity check accepts."),
    retrieval: bool = typer.Option(True, help="Store the training split's embeddings and reports in the bundle (retrieval reports and kNN zero-shot scoring; about 10 MB for PTB-XL)."),
    retrieval_data: Optional[Path] = typer.Option(None, help="Dataset folder for the retrieval data; default: the checkpoint's training dataset (its training split)."),
    scoring: str = typer.Option("knn", help="Default zero-shot scoring of the bundle: 'knn' (prompts vs the reports of the k nearest training ECGs) or 'direct' (prompts vs the ECG embedding)."),
    k: int = typer.Option(25, help="Neighbours for kNN scoring and consensus reports."),
    report_method: str = typer.Option("consensus", help="The bundle's report: 'decoder' (the decoder's text) or 'consensus' (the decoder's text and the nearest training ECGs' reports, the one that agrees most with the others)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Export a checkpoint to an ONNX bundle: encoder, cached decoder, tokenizer, label
    embeddings, MODEL_CARD.md and a manifest with checksums.

    The bundle is checked against PyTorch right away (embeddings within --rtol, identical
    greedy reports); a mismatch fails the export. The training dataset is found from the
    checkpoint's config (an absolute path), whatever the working directory.

    Examples:

        ecgreport export-onnx runs/resnet/best.pt --out export/

        ecgreport export-onnx runs/ludb/best.pt --out ludb-bundle --labels ludb=ludb-labels.csv
    """
    console = Console(stderr=True, quiet=quiet)
    errors = Console(stderr=True)  # failures are reported even with --quiet

    def fail(message: str, code: int) -> None:
        errors.print(message, style="red", markup=False)
        raise typer.Exit(code)

    try:
        from ecgreport.onnx.export import export_bundle
        from ecgreport.prompts import build_label_sets
        from ecgreport.training.checkpoint import read_checkpoint, train_config
    except ImportError as err:
        fail(f"export needs the train extra: pip install 'ecgreport[train]' ({err})", ExitCode.FATAL)
    if scoring not in ("knn", "direct"):
        raise typer.BadParameter("choose knn or direct", param_hint="--scoring")
    if report_method not in ("decoder", "consensus"):
        raise typer.BadParameter("choose decoder or consensus", param_hint="--report-method")
    try:
        ckpt = read_checkpoint(checkpoint)
    except BundleError as err:
        fail(str(err), ExitCode.USAGE)
    cfg = train_config(ckpt)
    data_dir = Path(cfg.data) if cfg.data else None
    if data_dir is not None and not data_dir.is_dir():
        console.print(f"the checkpoint's training data {data_dir} is not here: no retrieval data, "
                      "parity on --check-records", style="yellow", markup=False)
        data_dir = None

    label_sets = {}
    try:
        if scp_statements is None and data_dir is not None and (data_dir / "scp_statements.csv").is_file():
            scp_statements = data_dir / "scp_statements.csv"
        if scp_statements is not None:
            label_sets.update(build_label_sets(scp_statements))
        given = [parse_label_option(t) for t in labels]
        if not given and data_dir is not None and (data_dir / "labels").is_dir():
            given = [(p.stem, p) for p in sorted((data_dir / "labels").glob("*.csv"))]
        for name, path in given:
            if name in label_sets:
                raise ValueError(f"--labels: two label sets named {name!r}")
            if not path.is_file():
                raise ValueError(f"--labels {name}={path}: no such file")
            label_sets[name] = read_labels(path)
    except (ValueError, KeyError, OSError) as err:
        fail(str(err), ExitCode.USAGE)
    if not label_sets:
        fail("no label sets: give --labels NAME=FILE.csv (columns label,description), or PTB-XL's "
             "--scp-statements scp_statements.csv", ExitCode.USAGE)

    if not retrieval:
        retrieval_data = None
    elif retrieval_data is None:
        retrieval_data = data_dir
        if retrieval_data is None:
            console.print("no training data found for the retrieval data: the bundle gets direct scoring only",
                          style="yellow", markup=False)
    mc = ckpt["model_config"]
    window, fs_hz = int(mc["window_samples"]), float(mc["fs_hz"])
    parity = None
    if not check_records and data_dir is not None:
        parity = _dataset_parity_inputs(data_dir, window, fs_hz)
    if parity is None:
        parity = _parity_inputs(check_records, window, fs_hz)
    x, source = parity
    if source == "synthetic noise":
        console.print("parity check on synthetic noise: no records found (give --check-records)",
                      style="yellow", markup=False)
    try:
        manifest = export_bundle(checkpoint, out, x, label_sets=label_sets, rtol=rtol,
                                 retrieval_data=retrieval_data, scoring=scoring, k=k, report_method=report_method)
    except BundleError as err:
        fail(f"export failed: {err}", ExitCode.BAD_BUNDLE)
    except DataError as err:
        fail(f"export failed: {err}", ExitCode.FATAL)
    p = manifest["parity"]
    size = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
    console.print(
        f"wrote {out} ({size:.1f} MB): label sets {', '.join(manifest['label_sets'])}; "
        f"scoring {manifest['scoring']['method']}, reports {manifest['report']['method']}; parity on {p['n_records']} "
        f"{source}: embeddings max rel. diff {p['max_rel_embedding_diff']:.1e}, identical reports "
        f"{p['reports_identical']}/{p['reports_compared']}", markup=False
    )
