"""The bundle format module (ecgreport.onnx.bundle): the one reader and writer of the
manifest and retrieval.npz, and what `info` shows from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import ecgreport
from ecgreport.onnx import bundle as bundle_format

PACKAGE = Path(ecgreport.__file__).parent


def test_retrieval_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 32)).astype(np.float32)
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    data = {"train_embeddings": train, "report_ids": rng.integers(0, 7, size=200),
            "report_embeddings": rng.normal(size=(7, 32)).astype(np.float32),
            "reports": [f"report {i}" for i in range(7)], "splits": ["1", "2"],
            "data_name": "PTB-XL"}
    meta = bundle_format.write_retrieval(tmp_path, data, k=5)
    assert meta == {"file": "retrieval.npz", "reports": "retrieval_reports.json", "k": 5,
                    "n_train": 200, "n_reports": 7, "splits": ["1", "2"],
                    "data_name": "PTB-XL"}
    with np.load(tmp_path / "retrieval.npz") as npz:
        assert {k: npz[k].dtype.name for k in npz.files} == {
            "train_embeddings_int8": "int8", "train_embeddings_scale": "float32",
            "report_ids": "int32", "report_embeddings": "float16"}
    got = bundle_format.read_retrieval(tmp_path, json.loads(json.dumps(meta)))
    # int8 with a per-row scale: each component within half a step of the row's range
    np.testing.assert_allclose(got.train_embeddings, train, atol=np.abs(train).max() / 127)
    np.testing.assert_array_equal(got.report_ids, data["report_ids"])
    np.testing.assert_allclose(got.report_embeddings, data["report_embeddings"], rtol=1e-3, atol=1e-3)
    assert got.reports == data["reports"] and got.k == 5
    np.testing.assert_allclose(np.linalg.norm(got.train_embeddings, axis=1), 1.0, rtol=1e-5)


def test_packaged_bundle_properties():
    b = bundle_format.load_bundle(bundle_format.default_bundle_path())
    assert b.scoring in ("direct", "knn") and b.report_method in ("decoder", "consensus")
    assert b.units == "mV" and b.fs_hz > 0 and len(b.leads) == 12
    assert set(b.label_prompts) == set(b.label_sets)
    for name, labels in b.label_sets.items():
        assert list(b.label_prompts[name]) == labels


def test_info_shows_scoring_and_report_method():
    from ecgreport.cli import app

    b = bundle_format.load_bundle(bundle_format.default_bundle_path())
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    assert described["scoring"] == b.scoring and described["report_method"] == b.report_method
    result = CliRunner().invoke(app, ["info"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") >= 3}
    assert {"scoring", "report"} <= rows
    assert f"{b.report_method}: " in result.stdout and f"{b.scoring}: " in result.stdout


@pytest.mark.parametrize("module", ["commands/info.py", "batch.py", "pipeline.py",
                                    "evaluation/run.py", "commands/batch.py"])
def test_only_the_bundle_module_reads_manifest_keys(module):
    """Readers use Bundle's properties; manifest keys are spelled in ecgreport.onnx.bundle
    (and written by the exporter, used by the runtime's graphs)."""
    source = (PACKAGE / module).read_text(encoding="utf-8")
    assert not re.search(r"manifest\[|manifest\.get\(|\"retrieval\.npz\"", source)
