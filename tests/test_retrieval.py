"""Retrieval data in bundles: kNN zero-shot scoring, nearest and consensus reports,
and the manifest's own checksum."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import PTBXL_MINI, parity_records
from ecgreport.errors import BundleError
from ecgreport.onnx.retrieval import Retrieval, mbr_select
from ecgreport.onnx.runtime import ModelRunner, load_bundle


@pytest.fixture(scope="session")
def knn_bundle(tmp_path_factory, tiny_checkpoint):
    from ecgreport.onnx.export import export_bundle

    out = tmp_path_factory.mktemp("knn-bundle") / "bundle"
    export_bundle(tiny_checkpoint, out, parity_records(16), scp_statements=PTBXL_MINI / "scp_statements.csv",
                  retrieval_data=PTBXL_MINI, scoring="knn", k=5)
    return out


def test_mbr_select_prefers_the_consensus_and_is_deterministic():
    cands = ["sinus rhythm. normal ecg.", "atrial fibrillation", "sinus rhythm. normal ecg.",
             "sinus rhythm. left type. normal ecg."]
    assert mbr_select(cands) == "sinus rhythm. normal ecg."
    # a tie is broken by first appearance, not by hash order
    assert mbr_select(["a b", "c d"]) == "a b"
    assert mbr_select(["c d", "a b"]) == "c d"


def _exact_mbr(candidates: list[str]) -> str:
    """mbr_select's definition in exact rational arithmetic, pair by pair."""
    from fractions import Fraction

    count: dict[str, int] = {}
    for c in candidates:
        count[c] = count.get(c, 0) + 1
    uniq = list(count)

    def grams(text):
        w = text.split()
        return set(w) | {(w[i], w[i + 1]) for i in range(len(w) - 1)}

    g = [grams(u) for u in uniq]
    f1 = [[Fraction(2 * len(a & b), len(a) + len(b)) if a or b else Fraction(0) for b in g] for a in g]
    scores = [sum(count[u] * f for u, f in zip(uniq, row)) for row in f1]
    return uniq[scores.index(max(scores))]


def test_mbr_select_equals_its_exact_definition():
    # Few words, so that overlaps and exact ties between candidates are common.
    rng = np.random.default_rng(1)
    words = ["sinus", "rhythm", "normal", "ecg", "left", "type", "st", "changes", "."]
    for _ in range(400):
        cands = [" ".join(rng.choice(words, size=rng.integers(0, 6))) for _ in range(rng.integers(1, 27))]
        assert mbr_select(cands) == _exact_mbr(cands), cands


def test_neighbours_match_brute_force():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((50, 8)).astype(np.float32)
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    query = train[:3] + 0.01
    r = Retrieval(train, np.arange(50), np.zeros((50, 8), np.float32), [str(i) for i in range(50)], k=4)
    expected = np.argsort(-(query @ train.T), axis=1)[:, :4]
    np.testing.assert_array_equal(r.neighbours(query, 4), expected)
    assert list(r.neighbours(query, 1)[:, 0]) == [0, 1, 2]


def test_knn_scores_are_the_mean_over_neighbour_reports(knn_bundle):
    bundle = load_bundle(knn_bundle)
    assert bundle.scoring == "knn" and bundle.retrieval is not None
    assert bundle.manifest["retrieval"]["n_train"] == len(bundle.retrieval.report_ids)
    runner = ModelRunner(bundle, device="cpu")
    emb = runner.encode(parity_records(4)).embedding
    knn = runner.scores(emb)
    direct = runner.scores(emb, method="direct")
    r = bundle.retrieval
    nn = r.neighbours(emb, r.k)
    for name, labels in bundle.label_embeddings.items():
        manual = (r.report_embeddings[r.report_ids[nn]] @ labels.T).mean(axis=1)
        np.testing.assert_allclose(knn[name], manual, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(direct[name], emb @ labels.T, rtol=1e-5, atol=1e-6)
    assert not np.allclose(knn["superclass"], direct["superclass"])
    with pytest.raises(ValueError, match="unknown scoring"):
        runner.scores(emb, method="softmax")


def test_retrieved_and_consensus_reports_come_from_the_training_folds(knn_bundle):
    bundle = load_bundle(knn_bundle)
    runner = ModelRunner(bundle, device="cpu")
    emb = runner.encode(parity_records(3)).embedding
    nearest = runner.retrieve(emb)
    consensus = runner.consensus(emb)
    assert len(nearest) == len(consensus) == 3
    assert set(nearest) <= set(bundle.retrieval.reports)
    assert set(consensus) <= set(bundle.retrieval.reports)
    # the decoder's own report joins the candidates when given
    # with k=1 the decoder's report and the nearest report tie, and the first (the neighbour) wins
    assert runner.consensus(emb[:1], generated=["unique decoder text"], k=1) == nearest[:1]


def test_bundle_without_retrieval_falls_back_to_direct(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    runner = ModelRunner(bundle, device="cpu")
    emb = runner.encode(parity_records(2)).embedding
    assert bundle.retrieval is None and runner.retrieve(emb) == [] and runner.consensus(emb) == []
    np.testing.assert_allclose(runner.scores(emb, method="knn")["superclass"], emb @ bundle.label_embeddings["superclass"].T,
                               rtol=1e-5)


def test_an_edited_manifest_is_refused(tiny_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["input"]["fs_hz"] = 250.0
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with pytest.raises(BundleError, match="manifest.json: checksum"):
        load_bundle(copy)


def test_repeated_trigrams_are_banned():
    from ecgreport.reports import repeated_ngram_bans

    assert repeated_ngram_bans([9, 1, 9, 1], n=3) == [9]          # "avl , avl ," -> not "avl" again
    assert repeated_ngram_bans([1, 2, 3, 4], n=3) == []
    assert repeated_ngram_bans([1], n=3) == []


def test_default_bundle_is_found_as_package_data(tmp_path, monkeypatch):
    """After a non-editable install the bundle is the namespace package ecgreport.default_model."""
    import importlib.util
    from types import SimpleNamespace

    from ecgreport.onnx import runtime

    (tmp_path / "manifest.json").write_text("{}")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: SimpleNamespace(
        submodule_search_locations=[str(tmp_path)]) if name == "ecgreport.default_model" else real_find_spec(name, *a))
    assert runtime.default_bundle_path() == tmp_path
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert runtime.default_bundle_path().name == "export"  # a checkout: the repo's export/
