"""Run an exported bundle with onnxruntime and numpy alone (no torch on this path).

    bundle = load_bundle(default_bundle_path())      # checksums verified, BundleError if not
    runner = ModelRunner(bundle, device="auto")       # CUDA once it has run the model, else CPU
    enc = runner.encode(x)                            # x (B, 12, window) float32, normalised
    reports = runner.generate(enc)                    # greedy (beams=1) or beam search
    sims = runner.scores(enc.embedding)               # {label set: (B, n_labels) cosine}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ecgreport.errors import BundleError, UsageError
from ecgreport.onnx.bundle import (BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, MANIFEST, Bundle,
                                   add_label_set, default_bundle_path, load_bundle,
                                   manifest_checksum, sha256_file)
from ecgreport.onnx.gather import RowGather
from ecgreport.onnx.io_names import cache_names
from ecgreport.onnx.providers import (CPU, CUDA, CUDA_OPTIONS, DEVICES, choose_providers,
                                      cuda_missing_piece, describe_failure, fallback_note,
                                      quiet_stdout)
from ecgreport.onnx.retrieval import mbr_select
from ecgreport.reports import normalise_report, repeated_ngram_bans

log = logging.getLogger(__name__)

# The bundle's names stay importable from here, where the rest of ecgreport imports them.
__all__ = ["BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "MANIFEST", "Bundle", "CudaUnavailable", "Encoded",
           "ModelRunner", "add_label_set", "choose_providers", "default_bundle_path", "load_bundle",
           "manifest_checksum", "sha256_file"]


class CudaUnavailable(RuntimeError):
    """CUDA was asked for (or "auto") but cannot run the model; ``why`` says what is
    missing, ``note`` is the line for the user (None when nothing needs saying)."""

    def __init__(self, why: str, note: str | None):
        super().__init__(why)
        self.why, self.note = why, note


@dataclass
class Encoded:
    """Encoder output for B windows: the embedding and the decoder's cross-attention cache
    (one array per layer and kind, batch first, in the decoder graph's input order).

    With I/O binding (on a GPU) ``cross`` are OrtValues on the runner's device, and
    ``select`` picks their rows there; otherwise numpy arrays."""

    embedding: np.ndarray      # (B, D), on the host
    cross: list                # cross_k0, cross_v0, cross_k1, ...: (B, heads, T_enc, head_dim)
    select: Callable | None = None   # (values, rows) -> values[rows], for device-resident caches

    def take(self, rows) -> "Encoded":
        rows = np.asarray(rows, dtype=np.int64)
        cross = self.select(self.cross, rows) if self.select else [c[rows] for c in self.cross]
        return Encoded(self.embedding[rows], cross, self.select)

    def host_cross(self) -> list[np.ndarray]:
        """``cross`` as numpy arrays (a copy to the host when they are on a GPU)."""
        return [c if isinstance(c, np.ndarray) else c.numpy() for c in self.cross]

    def __len__(self) -> int:
        return self.embedding.shape[0]


@dataclass
class ModelRunner:
    """The bundle's encoder and decoder in onnxruntime sessions, on the CPU or CUDA.

    ``device`` "auto" or "cuda": CUDA is used only after it has run the model: the CUDA
    provider's libraries are checked (:func:`~ecgreport.onnx.providers.cuda_missing_piece`),
    sessions are made with onnxruntime's own fallback off, and a warm-up encodes
    ``warmup_rows`` windows and runs one decoder step from the zero-length cache, so that a
    GPU that cannot run the model (no cuDNN, a driver too old, out of memory) is found here
    and not in the middle of a batch. If any of it fails, the runner uses the CPU, with
    ``cuda_problem`` saying why and ``note`` the one line for the user (None where the CPU
    is simply expected: ``auto`` without an NVIDIA driver or onnxruntime-gpu).
    ``cpu_fallback=False`` raises :class:`CudaUnavailable` instead (the batch then runs
    worker processes on the CPU, see ``ecgreport.batch.open_model``).

    ``io_binding`` (default: on a GPU only): keep the caches on the session's device
    between the encoder and the decoder steps, see :meth:`_step`.
    """

    bundle: Bundle
    device: str = "auto"
    threads: int = 0
    io_binding: bool | None = None
    warmup_rows: int = 1
    cpu_fallback: bool = True
    note: str | None = field(default=None, init=False)
    cuda_problem: str | None = field(default=None, init=False)
    provider_options: dict = field(default_factory=dict, init=False)  # as the session reports them

    def __post_init__(self) -> None:
        import onnxruntime as ort

        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}: choose auto, cpu or cuda")
        # 4 = fatal only: a CUDA provider that cannot load its libraries logs an error screen
        # at level 3; we fall back to the CPU and say so in one line (self.note) instead.
        ort.set_default_logger_severity(4)
        graphs = self.bundle.manifest["graphs"]
        self._layers = int(graphs["decoder_layers"])
        names = cache_names(self._layers)
        self._past_names, self._cross_names = names["past"], names["cross"]
        self._heads = int(graphs["decoder_heads"])
        self._head_dim = int(graphs["head_dim"])
        gen = self.bundle.manifest["generation"]
        self._bos, self._eos = int(gen["bos"]), int(gen["eos"])
        self.max_tokens = int(gen["max_tokens"])
        self._report_sims: dict[str, np.ndarray] = {}  # label set -> (U, L), for kNN scoring
        self._gather: RowGather | None = None

        if self.device != "cpu":
            self.cuda_problem = cuda_missing_piece()
            if self.cuda_problem is None:
                self.cuda_problem = self._start_cuda()
            if self.cuda_problem is None:
                return
            self.note = fallback_note(self.device, self.cuda_problem)
            if not self.cpu_fallback:
                raise CudaUnavailable(self.cuda_problem, self.note)
        self._open([CPU])
        self._use("cpu")

    # -- sessions --------------------------------------------------------------------------
    def _open(self, provider_list: list) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        self._opts, self._providers = opts, provider_list
        graphs = self.bundle.manifest["graphs"]
        sessions = []
        for graph in (graphs["encoder"], graphs["decoder"]):
            try:
                # enable_fallback=0: onnxruntime would otherwise retry on the CPU by itself,
                # printing an "EP Error" banner on stdout; the fallback is ours to make.
                with quiet_stdout():
                    session = ort.InferenceSession(str(self.bundle.path / graph), opts,
                                                   providers=provider_list, enable_fallback=0)
            except Exception as err:  # onnxruntime raises its own exception types
                if provider_list[0] != CPU:
                    raise
                raise BundleError(f"{self.bundle.path}: onnxruntime cannot load the model ({err})") from err
            session.disable_fallback()  # the same for errors in run()
            sessions.append(session)
        self._enc, self._dec = sessions
        self._enc_outputs = [o.name for o in self._enc.get_outputs()]
        self._new_names = [o.name for o in self._dec.get_outputs()[1:]]

    def _use(self, device: str) -> None:
        self.provider = self._enc.get_providers()[0]
        self._device = device
        if self.io_binding is None:
            self.io_binding = device == "cuda"
        if self.io_binding:
            self._gather = RowGather(2 * self._layers, self._providers, self._opts, device)

    def _start_cuda(self) -> str | None:
        """Open the sessions on CUDA and run the model once; None when it worked, else why not."""
        asked = self.io_binding
        try:
            self._open([(CUDA, dict(CUDA_OPTIONS)), CPU])
            if self._enc.get_providers()[0] != CUDA or self._dec.get_providers()[0] != CUDA:
                return "the CUDA provider did not start (its libraries failed to load)"
            self._use("cuda")
            reported = self._enc.get_provider_options().get(CUDA, {})
            self.provider_options = {k: reported.get(k, v) for k, v in CUDA_OPTIONS.items()}
            self._warm_up()
        except Exception as err:
            log.debug("CUDA check failed", exc_info=True)
            self._enc = self._dec = self._gather = None
            self.provider_options = {}
            self.io_binding = asked  # the CPU's own default again, unless one was asked for
            return describe_failure(err)
        return None

    def _warm_up(self) -> None:
        """One encode of ``warmup_rows`` windows and one decoder step from the zero-length
        cache, through the same code as a batch; raises if the device cannot run them."""
        rows = max(1, int(self.warmup_rows))
        x = np.zeros((rows, len(self.bundle.leads), self.bundle.window_samples), np.float32)
        enc = self.encode(x)
        logits, past = self._step(np.full(rows, self._bos, np.int64), self._empty_past(rows), enc.cross)
        self._take(past, [0])  # and the row selection used by beams and record windows
        if not np.isfinite(logits).all():
            raise RuntimeError("the warm-up decoder step gave non-finite logits")

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> Encoded:
        """x (B, 12, window) float32, normalised (ecgreport.signal.preprocess.normalise).

        With I/O binding the cross-attention cache stays on the device (~17 MB per 64
        windows that would otherwise go to the host and back for decoding); only the
        (B, D) embedding comes to the host, for scores and the choice of window."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not self.io_binding:
            emb, *cross = self._enc.run(None, {"ecg": x})
            return Encoded(emb, cross)
        io = self._enc.io_binding()
        io.bind_cpu_input("ecg", x)
        io.bind_output(self._enc_outputs[0], "cpu")
        for name in self._enc_outputs[1:]:
            io.bind_output(name, self._device)
        self._enc.run_with_iobinding(io)
        emb, *cross = io.get_outputs()
        return Encoded(emb.numpy(), cross, self._take)

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

    def consensus(self, embedding: np.ndarray, generated: list[str] | None = None, k: int | None = None,
                  nn: np.ndarray | None = None) -> list[str]:
        """Minimum-Bayes-risk choice among the reports of the k nearest training ECGs (and
        the decoder's own report, when given): the candidate that agrees most, by word
        n-gram F1, with all the others. PTB-XL's reports are templated, so the consensus of
        the neighbours is a better guess than the single nearest one. [] without retrieval data.
        ``nn``: the neighbours' rows when already searched (the search dominates the cost).
        """
        r = self.bundle.retrieval
        if r is None:
            return []
        if nn is None:
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
        # On the host even with I/O binding: a zero-length cache costs nothing to bind, and
        # no zero-byte buffer is ever allocated on the device.
        z = np.zeros((b, self._heads, 0, self._head_dim), np.float32)
        return [z] * (2 * self._layers)

    def _step(self, token: np.ndarray, past: list, cross: list) -> tuple[np.ndarray, list]:
        """One decoder step -> logits (B, V) on the host, new past.

        Without I/O binding, numpy in and out. With it, the caches stay on the session's
        device: each step's new key/value cache (an OrtValue) is the next step's input, the
        cross-attention cache is the encoder's own output; only the token goes in and the
        logits come out. On a GPU, numpy feeds would copy every cache to the device and back
        at every step."""
        if not self.io_binding:
            feeds = {"token": token, **dict(zip(self._past_names, past)), **dict(zip(self._cross_names, cross))}
            logits, *new_past = self._dec.run(None, feeds)
            return logits, new_past
        io = self._dec.io_binding()
        io.bind_cpu_input("token", np.ascontiguousarray(token, dtype=np.int64))
        for name, value in [*zip(self._past_names, past), *zip(self._cross_names, cross)]:
            if isinstance(value, np.ndarray):
                io.bind_cpu_input(name, np.ascontiguousarray(value))
            else:
                io.bind_ortvalue_input(name, value)
        io.bind_output("logits", "cpu")
        for name in self._new_names:
            io.bind_output(name, self._device)
        self._dec.run_with_iobinding(io)
        logits, *new_past = io.get_outputs()
        return logits.numpy(), new_past

    def _take(self, values: list, rows) -> list:
        """``[v[rows] for v in values]`` along the batch axis, on the device the values are on
        (a Gather graph run by onnxruntime for OrtValues; numpy for host arrays)."""
        rows = np.asarray(rows, dtype=np.int64)
        if all(isinstance(v, np.ndarray) for v in values):
            return [v[rows] for v in values]
        return self._gather(values, rows)

    def generate_ids(self, enc: Encoded, max_tokens: int | None = None, beams: int = 1) -> list[list[int]]:
        """Token ids per window (without <bos>/<eos>)."""
        max_tokens = min(max_tokens or self.max_tokens, self.max_tokens)
        if beams > 1:
            return [self._beam_search(enc, i, max_tokens, beams) for i in range(len(enc))]
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
                keep = np.flatnonzero(alive)
                rows, token = rows[keep], token[keep]
                past, cross = self._take(past, keep), self._take(cross, keep)
                alive = np.ones(len(rows), dtype=bool)
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

    def _beam_search(self, enc: Encoded, row: int, max_tokens: int, beams: int,
                     alpha: float = 0.7) -> list[int]:
        """Beam search for window ``row`` of ``enc``; scores are length-normalised
        log-probabilities. The caches stay where ``enc`` keeps them (see :meth:`_take`)."""
        return self.beam_hypotheses(enc, row, max_tokens, beams, alpha)[0][1]

    def beam_hypotheses(self, enc: Encoded, row: int, max_tokens: int, beams: int,
                        alpha: float = 0.7) -> list[tuple[float, list[int]]]:
        """The finished hypotheses of :meth:`_beam_search` (score, token ids), best first (the
        n-best list that minimum-Bayes-risk decoding chooses from); the best open beam when
        none finished."""
        cross = self._take(enc.cross, np.full(beams, row))  # the window's cache, once per beam
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
            past = self._take(past, src)
            seqs, logp, token = new_seqs, np.array(new_logp), np.array(new_tok, np.int64)
        if not done:
            best = int(np.argmax(logp))
            return [(float(logp[best]), seqs[best])]
        return sorted(done, key=lambda d: -d[0])  # stable: ties keep the order they finished in

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
        All three in standard English terms (`normalise_report`; a no-op for a model trained
        on normalised reports, a translation of the device vocabulary for an older one).
        """
        decoded = self.generate(enc, max_tokens, beams)
        r = self.bundle.retrieval
        nn = None if r is None else r.neighbours(embedding, r.k)  # searched once for both
        similar = self.consensus(embedding, nn=nn) or [None] * len(decoded)
        final = decoded
        if self.bundle.report_method == "consensus" and r is not None:
            final = self.consensus(embedding, decoded, nn=nn)
        return [{"report": normalise_report(f), "decoder_report": normalise_report(d),
                 "similar_training_report": None if s is None else normalise_report(s)}
                for f, d, s in zip(final, decoded, similar)]

    # -- custom labels -----------------------------------------------------------------------
    def add_label_set(self, name: str, labels: list[str], descriptions: list[str],
                      prompts: list[list[str]] | None = None) -> None:
        """Embed a user's classes with the bundle's text model (see :func:`add_label_set`)."""
        add_label_set(self.bundle, name, labels, descriptions, prompts)
        self._report_sims.pop(name, None)
