"""`ecgreport export-onnx`: a training checkpoint -> the ONNX bundle that `batch` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ecgreport.errors import BundleError, ExitCode


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


def export_onnx(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (RUN/best.pt).", exists=True, dir_okay=False),
    out: Path = typer.Option(Path("export"), "--out", "-o", help="Bundle folder to write (replaced only after its checks pass)."),
    scp_statements: Optional[Path] = typer.Option(None, help="PTB-XL scp_statements.csv for the built-in label sets; default: the one in the checkpoint's training data folder."),
    labels: Optional[Path] = typer.Option(None, help="Your own classes: CSV with columns label,description (added as label set 'custom')."),
    check_records: list[Path] = typer.Option([], "--check-records", help="Folder(s) of WFDB records for the PyTorch-vs-ONNX parity check (default: the training data's records100)."),
    rtol: float = typer.Option(1e-4, help="Largest relative embedding difference the parity check accepts."),
    retrieval: bool = typer.Option(True, help="Store the training folds' embeddings and reports in the bundle (retrieval reports and kNN zero-shot scoring; about 10 MB)."),
    retrieval_data: Optional[Path] = typer.Option(None, help="PTB-XL-layout folder for the retrieval data; default: the checkpoint's training data."),
    scoring: str = typer.Option("knn", help="Default zero-shot scoring of the bundle: 'knn' (prompts vs the reports of the k nearest training ECGs) or 'direct' (prompts vs the ECG embedding)."),
    k: int = typer.Option(25, help="Neighbours for kNN scoring and consensus reports."),
    report_method: str = typer.Option("consensus", help="The bundle's report: 'decoder' (the decoder's text) or 'consensus' (the decoder's text and the nearest training ECGs' reports, the one that agrees most with the others)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Export a checkpoint to an ONNX bundle: encoder, cached decoder, tokenizer, label
    embeddings, MODEL_CARD.md and a manifest with checksums.

    The bundle is checked against PyTorch right away (embeddings within --rtol, identical
    greedy reports); a mismatch fails the export.

    Example:

        ecgreport export-onnx runs/resnet/best.pt --out export/
    """
    console = Console(stderr=True, quiet=quiet)
    errors = Console(stderr=True)  # failures are reported even with --quiet
    try:
        import torch

        from ecgreport.onnx.export import export_bundle
    except ImportError as err:
        errors.print(f"[red]export needs the train extra: pip install 'ecgreport[train]' ({err})")
        raise typer.Exit(ExitCode.FATAL)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    data_dir = Path(ckpt.get("config", {}).get("data", "") or ".")
    if scp_statements is None and (data_dir / "scp_statements.csv").is_file():
        scp_statements = data_dir / "scp_statements.csv"
    if not check_records and (data_dir / "records100").is_dir():
        first = sorted((data_dir / "records100").iterdir())
        check_records = first[:1]
    if scoring not in ("knn", "direct"):
        raise typer.BadParameter("choose knn or direct", param_hint="--scoring")
    if report_method not in ("decoder", "consensus"):
        raise typer.BadParameter("choose decoder or consensus", param_hint="--report-method")
    if retrieval and retrieval_data is None and (data_dir / "ptbxl_database.csv").is_file():
        retrieval_data = data_dir
    if not retrieval:
        retrieval_data = None
    elif retrieval_data is None:
        console.print("[yellow]no training data found for the retrieval data: the bundle gets direct scoring only")
    mc = ckpt["model_config"]
    x, source = _parity_inputs(check_records, int(mc["window_samples"]), float(mc["fs_hz"]))
    try:
        manifest = export_bundle(checkpoint, out, x, scp_statements=scp_statements, labels_csv=labels, rtol=rtol,
                                 retrieval_data=retrieval_data, scoring=scoring, k=k, report_method=report_method)
    except (BundleError, ValueError) as err:
        errors.print(f"[red]export failed: {err}")
        raise typer.Exit(ExitCode.BAD_BUNDLE)
    p = manifest["parity"]
    size = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
    console.print(
        f"wrote {out} ({size:.1f} MB): label sets {', '.join(manifest['label_sets'])}; "
        f"scoring {manifest['scoring']['method']}, reports {manifest['report']['method']}; parity on {p['n_records']} "
        f"{source}: embeddings max rel. diff {p['max_rel_embedding_diff']:.1e}, identical reports "
        f"{p['reports_identical']}/{p['reports_compared']}"
    )
