"""`ecgreport export-onnx`: a training checkpoint -> the ONNX bundle that `batch` runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ecgreport.errors import BundleError, DataError, MissingExtraError, UsageError, check_output_folder
from ecgreport.labelsets import read_labels_csv


def read_labels(path: Path):
    """One label set from a CSV (label,description[,more prompts]): the one strict reader."""
    from ecgreport.prompts import Label

    return [Label(name, prompts[0], prompts) for name, prompts in read_labels_csv(path).items()]


def parse_label_option(text: str) -> tuple[str, Path]:
    """'name=file.csv' -> ('name', Path('file.csv')); a file alone is the set 'custom'."""
    name, sep, path = text.partition("=")
    if not sep:
        return "custom", Path(text)
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UsageError(f"--labels {text!r}: a set's name is letters, digits, '_', '-' or '.' (NAME=FILE.csv)")
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
    checkpoint: Path = typer.Argument(
        ..., metavar="CHECKPOINT", help="Training checkpoint (RUN/best.pt).", exists=True,
        dir_okay=False, show_default=False),
    out: Path = typer.Option(
        Path("export"), "--out", "-o",
        help="Bundle folder to write (replaced only after its checks pass)."),
    scp_statements: Optional[Path] = typer.Option(
        None, help="PTB-XL scp_statements.csv for PTB-XL's label sets (superclass, subclass, "
        "form, rhythm). Default: the one in the training dataset's folder, if any.",
        show_default=False),
    labels: list[str] = typer.Option(
        [], "--labels", metavar="NAME=FILE.csv", help="Your own label set: a CSV with the "
        "header 'label,description[,more prompts]' and one row per label; repeat for "
        "several. A FILE alone is the set 'custom'. Default: the training dataset's "
        "labels/*.csv.", show_default=False),
    check_records: list[Path] = typer.Option(
        [], "--check-records", metavar="FOLDER", help="Folder of WFDB records for the parity "
        "check of ONNX against PyTorch (repeat for more). Default: the training dataset's "
        "first 16 records.", show_default=False),
    rtol: float = typer.Option(
        1e-4, help="Largest relative embedding difference the parity check accepts."),
    retrieval: bool = typer.Option(
        True, help="Store the training split's embeddings and reports in the bundle "
        "(needed by knn scoring and consensus reports; about 10 MB for the PTB-XL model)."),
    retrieval_data: Optional[Path] = typer.Option(
        None, help="Dataset folder for the retrieval data. Default: the checkpoint's "
        "training dataset (its training split).", show_default=False),
    scoring: str = typer.Option(
        "knn", metavar="knn|direct", help="The bundle's zero-shot scoring: 'knn' (prompts vs "
        "the reports of the k nearest training ECGs) or 'direct' (prompts vs the ECG "
        "embedding). See 'Defaults' above."),
    k: int = typer.Option(25, help="Neighbours for knn scoring and consensus reports."),
    report_method: str = typer.Option(
        "consensus", metavar="consensus|decoder", help="The bundle's report: 'decoder' (the "
        "decoder's text) or 'consensus' (of the decoder's text and the nearest training "
        "ECGs' reports, the one that agrees most with the others). See 'Defaults' above."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress messages on stderr (errors still show)."),
) -> None:
    """Export a checkpoint to an ONNX bundle: encoder, cached decoder, tokenizer, label
    embeddings, MODEL_CARD.md and a manifest with checksums.

    The bundle is checked against PyTorch right away (embeddings within --rtol, identical
    greedy reports); a mismatch fails the export. The training dataset is found from the
    checkpoint's config (an absolute path), whatever the working directory.

    Defaults: --scoring knn and --report-method consensus need no tuning, so they are the
    safe choice for a new checkpoint. The shipped bundle uses --scoring direct and
    --report-method decoder instead: for that model they did better on PTB-XL's validation
    fold 9 (`ecgreport evaluate --folds 9`; README, "Reproducing the numbers"). Compare
    both on fold 9 for your own model before choosing.

    \b
    Examples:
      ecgreport export-onnx runs/resnet/best.pt --out export/
      ecgreport export-onnx runs/ludb/best.pt --out ludb-bundle \\
          --labels ludb=ludb-labels.csv
    """
    console = Console(stderr=True, quiet=quiet, highlight=False)
    if scoring not in ("knn", "direct"):
        raise typer.BadParameter(f"{scoring!r}: choose knn or direct", param_hint="--scoring")
    if report_method not in ("decoder", "consensus"):
        raise typer.BadParameter(f"{report_method!r}: choose decoder or consensus",
                                 param_hint="--report-method")
    check_output_folder(out)
    given = [parse_label_option(t) for t in labels]
    for name, path in given:  # a malformed file fails now, not after the model has loaded
        if not path.is_file():
            raise UsageError(f"--labels {name}={path}: no such file")
        read_labels_csv(path)
    try:
        from ecgreport.onnx.export import export_bundle
        from ecgreport.prompts import build_label_sets
        from ecgreport.training.checkpoint import read_checkpoint, train_config
    except ImportError as err:
        raise MissingExtraError.train("export-onnx", err) from None
    ckpt = read_checkpoint(checkpoint)  # BundleError (exit 5) when it is not a checkpoint
    cfg = train_config(ckpt)
    data_dir = Path(cfg.data) if cfg.data else None
    if data_dir is not None and not data_dir.is_dir():
        console.print(f"the checkpoint's training data {data_dir} is not here: no retrieval data, "
                      "parity on --check-records", style="yellow", markup=False)
        data_dir = None

    label_sets = {}
    if scp_statements is None and data_dir is not None and (data_dir / "scp_statements.csv").is_file():
        scp_statements = data_dir / "scp_statements.csv"
    if scp_statements is not None:
        label_sets.update(build_label_sets(scp_statements))
    if not given and data_dir is not None and (data_dir / "labels").is_dir():
        given = [(p.stem, p) for p in sorted((data_dir / "labels").glob("*.csv"))]
    for name, path in given:
        if name in label_sets:
            raise UsageError(f"--labels: two label sets named {name!r}")
        label_sets[name] = read_labels(path)
    if not label_sets:
        raise UsageError("no label sets: give --labels NAME=FILE.csv (columns label,description), "
                         "or PTB-XL's --scp-statements scp_statements.csv")

    if not retrieval:
        retrieval_data = None
    elif retrieval_data is None:
        retrieval_data = data_dir
        if retrieval_data is None:
            console.print("no training data found for the retrieval data: the bundle gets direct "
                          "scoring only", style="yellow", markup=False)
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
    manifest = export_bundle(checkpoint, out, x, label_sets=label_sets, rtol=rtol,
                             retrieval_data=retrieval_data, scoring=scoring, k=k,
                             report_method=report_method)
    p = manifest["parity"]
    size = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
    console.print(
        f"wrote {out} ({size:.1f} MB): label sets {', '.join(manifest['label_sets'])}; "
        f"scoring {manifest['scoring']['method']}, reports {manifest['report']['method']}; "
        f"parity on {p['n_records']} {source}: embeddings max rel. diff "
        f"{p['max_rel_embedding_diff']:.1e}, identical reports "
        f"{p['reports_identical']}/{p['reports_compared']}", markup=False)
