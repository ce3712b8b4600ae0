"""Export a training checkpoint to a bundle folder that `ecgreport batch` runs.

Bundle layout (fixed names):
  encoder.onnx, decoder.onnx      the two graphs (see ecgreport.onnx.graphs)
  tokenizer.json                  the decoder's word vocabulary
  label_embeddings.npz            one (n_labels, D) matrix per label set
  MODEL_CARD.md                   data, training, metrics, intended use, limits
  manifest.json                   sha256 of every file, input spec, label sets and prompts,
                                  configs, text model, library versions, parity check result

Right after writing, the bundle is loaded with onnxruntime and compared with the PyTorch
model on real records: embeddings must agree within `rtol` and greedy reports must be
identical, or the export fails (and the half-made bundle is removed).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecgreport import DISCLAIMER
from ecgreport.errors import BundleError
from ecgreport.leads import STANDARD_LEADS
from ecgreport.model.config import ModelConfig
from ecgreport.model.generate import greedy_generate
from ecgreport.model.model import ECGReportModel, embed_signals
from ecgreport.onnx.graphs import export_graphs
from ecgreport.onnx.runtime import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, MANIFEST, ModelRunner, load_bundle, manifest_checksum, sha256_file
from ecgreport.labelsets import read_labels_csv
from ecgreport.prompts import Label, build_label_sets, ensemble_embeddings
from ecgreport.reports import WordTokenizer

log = logging.getLogger(__name__)

NORMALISATION = "per-lead median removed, NaN set to 0, clipped to +-10 mV (ecgreport.signal.preprocess.normalise)"


@dataclass
class ParityResult:
    n_records: int
    max_abs_embedding_diff: float
    max_rel_embedding_diff: float
    reports_identical: int
    reports_compared: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def load_checkpoint(path: Path) -> tuple[ECGReportModel, WordTokenizer, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "model_config", "tokenizer"):
        if key not in ckpt:
            raise BundleError(f"{path}: not an ecgreport training checkpoint (no {key!r})")
    model = ECGReportModel(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), WordTokenizer.from_dict(ckpt["tokenizer"]), ckpt


def check_parity(bundle_dir: Path, model: ECGReportModel, tokenizer: WordTokenizer, x: np.ndarray,
                 rtol: float = 1e-4) -> ParityResult:
    """Compare onnxruntime with PyTorch on x (N, 12, window); raise BundleError on mismatch."""
    runner = ModelRunner(load_bundle(bundle_dir), device="cpu")
    enc = runner.encode(x)
    with torch.inference_mode():
        emb_t, _ = model.encode(torch.from_numpy(x))
    emb_t = emb_t.numpy()
    abs_diff = float(np.abs(enc.embedding - emb_t).max())
    rel_diff = abs_diff / max(float(np.abs(emb_t).max()), 1e-12)
    ids_ort = runner.generate_ids(enc)
    ids_t = greedy_generate(model, torch.from_numpy(x), tokenizer.BOS, tokenizer.EOS, model.cfg.max_report_tokens)
    same = sum(a == b for a, b in zip(ids_ort, ids_t))
    result = ParityResult(len(x), abs_diff, rel_diff, same, len(x))
    if rel_diff > rtol or same != len(x):
        raise BundleError(
            f"ONNX export does not match PyTorch: embedding relative difference {rel_diff:.2e} "
            f"(tolerance {rtol:.0e}), identical greedy reports {same}/{len(x)}"
        )
    return result


def build_retrieval(model: ECGReportModel, text, data_dir: Path, folds, batch_size: int = 256, progress=None) -> dict:
    """Training-fold ECG embeddings and their reports' text embeddings, for the bundle."""
    from ecgreport.training.data import load_split

    cfg = model.cfg
    data = load_split(Path(data_dir), set(folds), cfg.fs_hz, cfg.window_samples, progress=progress)
    emb = embed_signals(model, data.signals, batch_size=batch_size)
    return {"train_embeddings": emb, "report_ids": data.report_ids, "reports": data.unique_reports,
            "report_embeddings": text.embed(data.unique_reports), "folds": sorted(set(int(f) for f in folds))}


def _write_retrieval(folder: Path, retrieval: dict, k: int) -> dict:
    # int8 with a per-row scale: a quarter of float32 (5 MB for PTB-XL's 13k training
    # ECGs); the error (<0.4% of each component's range) leaves the neighbour ranking intact.
    emb = retrieval["train_embeddings"].astype(np.float32)
    scale = np.abs(emb).max(axis=1, keepdims=True) / 127.0
    np.savez_compressed(
        folder / "retrieval.npz",
        train_embeddings_int8=np.round(emb / np.maximum(scale, 1e-12)).astype(np.int8),
        train_embeddings_scale=scale.astype(np.float32),
        report_ids=retrieval["report_ids"].astype(np.int32),
        report_embeddings=retrieval["report_embeddings"].astype(np.float16),
    )
    (folder / "retrieval_reports.json").write_text(json.dumps(retrieval["reports"], ensure_ascii=False), encoding="utf-8")
    return {"file": "retrieval.npz", "reports": "retrieval_reports.json", "k": k,
            "n_train": int(len(retrieval["report_ids"])), "n_reports": len(retrieval["reports"]),
            "folds": retrieval.get("folds")}


def _write_manifest(folder: Path, manifest: dict) -> None:
    manifest["checksum"] = manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _manifest_files(folder: Path) -> dict:
    return {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}


def _versions() -> dict:
    import onnx
    import onnxruntime

    from ecgreport.training.loop import library_versions

    return {**library_versions(), "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def export_bundle(
    checkpoint: Path,
    out_dir: Path,
    parity_inputs: np.ndarray,
    scp_statements: Path | None = None,
    labels_csv: Path | None = None,
    text_model: str | None = None,
    model_card: str | None = None,
    extra_manifest: dict | None = None,
    rtol: float = 1e-4,
    retrieval_data: Path | None = None,
    scoring: str = "knn",
    k: int = 25,
    report_method: str = "consensus",
    progress=None,
) -> dict:
    """Write a bundle to out_dir (replacing it only once the new one passed its checks)."""
    from ecgreport.model.text_encoder import TextEncoder

    model, tokenizer, ckpt = load_checkpoint(checkpoint)
    cfg = model.cfg
    label_sets: dict[str, list[Label]] = {}
    if scp_statements is not None:
        label_sets.update(build_label_sets(scp_statements))
    if labels_csv is not None:
        label_sets["custom"] = [Label(name, prompts[0], prompts)
                                for name, prompts in read_labels_csv(labels_csv).items()]
    if not label_sets:
        raise BundleError("no label sets: give --scp-statements (PTB-XL's scp_statements.csv) and/or --labels CSV")
    text_name = text_model or ckpt.get("text_model") or "all-MiniLM-L6-v2"
    text = TextEncoder(text_name)
    if text.dim != cfg.text_dim:
        raise BundleError(f"text model {text_name!r} has {text.dim} dimensions; the checkpoint was trained for {cfg.text_dim}")

    out_dir = Path(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir.parent if out_dir.parent.exists() else None))
    try:
        graphs = export_graphs(model, staging)
        tokenizer.save(staging / "tokenizer.json")
        np.savez(staging / "label_embeddings.npz",
                 **{name: ensemble_embeddings(text.embed, labels) for name, labels in label_sets.items()})
        train_cfg = ckpt.get("config", {})
        retrieval_meta = None
        if retrieval_data is not None:
            folds = train_cfg.get("train_folds") or list(range(1, 9))
            retrieval_meta = _write_retrieval(staging, build_retrieval(model, text, retrieval_data, folds, progress=progress), k)
        if retrieval_meta is None:
            scoring, report_method = "direct", "decoder"
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "disclaimer": DISCLAIMER,
            "checkpoint": {"file": Path(checkpoint).name, "sha256": sha256_file(Path(checkpoint)),
                           "epoch": ckpt.get("epoch", -1) + 1, "step": ckpt.get("step"),
                           "validation": ckpt.get("metrics", {})},
            "input": {"fs_hz": cfg.fs_hz, "window_samples": cfg.window_samples,
                      "window_s": cfg.window_samples / cfg.fs_hz, "leads": list(STANDARD_LEADS),
                      "units": "mV", "normalisation": NORMALISATION, "min_seconds": 5.0},
            "graphs": {**graphs, "decoder_layers": cfg.decoder_layers, "decoder_heads": cfg.decoder_heads,
                       "head_dim": cfg.width // cfg.decoder_heads, "opset": 17},
            "tokenizer": "tokenizer.json",
            "generation": {"bos": tokenizer.BOS, "eos": tokenizer.EOS, "max_tokens": cfg.max_report_tokens},
            "label_embeddings": "label_embeddings.npz",
            "label_sets": {
                name: {"labels": [{"name": l.name, "description": l.description, "prompts": l.prompts} for l in labels],
                       "scoring": "cosine similarity with the normalised mean of the prompts' text embeddings"}
                for name, labels in label_sets.items()
            },
            "text_model": {"name": text_name, "dim": text.dim},
            "scoring": {"method": scoring, "k": k if scoring == "knn" else None},
            "report": {"method": report_method},
            **({"retrieval": retrieval_meta} if retrieval_meta else {}),
            "model_config": cfg.to_dict(),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "train_config": train_cfg,
            "versions": _versions(),
            **(extra_manifest or {}),
        }
        (staging / "MODEL_CARD.md").write_text(model_card or default_model_card(manifest), encoding="utf-8")
        manifest["files"] = _manifest_files(staging)
        _write_manifest(staging, manifest)
        parity = check_parity(staging, model, tokenizer, parity_inputs.astype(np.float32), rtol)
        manifest["parity"] = {**parity.to_dict(), "rtol": rtol}
        _write_manifest(staging, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.move(str(staging), str(out_dir))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return manifest


def default_model_card(manifest: dict) -> str:
    """A minimal model card; `ecgreport evaluate --model-card` writes the full one with metrics."""
    tc = manifest.get("train_config", {})
    return f"""# ecgreport model

{manifest['disclaimer']}

- Encoder: {manifest['model_config']['encoder']}; text model: {manifest['text_model']['name']}
- Input: {manifest['input']['fs_hz']:g} Hz, {manifest['input']['window_s']:g} s windows, leads {', '.join(manifest['input']['leads'])}, mV
- Trained on: {tc.get('data', '?')} folds {tc.get('train_folds', '?')}, selected on folds {tc.get('val_folds', '?')}
- Loss weights: CE {tc.get('ce_weight')}, OT {tc.get('ot_weight')}, InfoNCE {tc.get('nce_weight')}

Metrics: run `ecgreport evaluate --model <bundle> --data <PTB-XL>`.

Data: PTB-XL (Wagner et al., Scientific Data 7, 154, 2020; CC BY 4.0).
Method: Qiu et al., "Transfer Knowledge from Natural Language to Electrocardiography", Findings of EACL 2023.
"""


def replace_model_card(bundle_dir: Path, text: str) -> None:
    """Write a new MODEL_CARD.md into an exported bundle and re-seal its manifest (file
    checksums and the manifest's own checksum), e.g. once `evaluate` has measured the bundle."""
    bundle_dir = Path(bundle_dir)
    manifest = json.loads((bundle_dir / MANIFEST).read_text(encoding="utf-8"))
    tmp = bundle_dir / ".MODEL_CARD.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(bundle_dir / "MODEL_CARD.md")
    manifest["files"]["MODEL_CARD.md"] = {"sha256": sha256_file(bundle_dir / "MODEL_CARD.md"),
                                          "bytes": (bundle_dir / "MODEL_CARD.md").stat().st_size}
    _write_manifest(bundle_dir, manifest)
    load_bundle(bundle_dir)  # proves the re-sealed bundle verifies
