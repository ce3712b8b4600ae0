"""Zero-shot prompts in the reports' wording, likelihood scoring, report decoding choices
(issue 14, "Zero-shot scoring" and "Report decoding"), and scripts/choose_scoring.py."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgreport.evaluation.decoding import BUNDLE_SETTING, DECODERS, choose_decoder, text_scores
from ecgreport.evaluation.likelihood import LikelihoodScorer, combine_z, mean_logprobs, prompt_ids
from ecgreport.evaluation.prompt_mining import mine, to_csv, training_reports
from ecgreport.prompts import (LEGACY_REPORT_PHRASES, PROMPT_STYLES, REPORT_PHRASES, build_label_sets,
                               code_prompts, mined_phrases)
from ecgreport.reports import normalise_report

from conftest import PTBXL_MINI

ROOT = Path(__file__).resolve().parents[1]
PTBXL = Path("/work/data/ptb-xl")
SCP = PTBXL_MINI / "scp_statements.csv"
needs_ptbxl = pytest.mark.skipif(not (PTBXL / "reports_en.csv").is_file(), reason="PTB-XL not at /work/data/ptb-xl")


# -- prompts ---------------------------------------------------------------------------------

def test_report_phrases_are_in_the_normalised_wording():
    for code, phrases in REPORT_PHRASES.items():
        for p in phrases:
            assert normalise_report(p) == p, (code, p)
    # the legacy table is what changed: its device wording is not a fixed point
    legacy = [p for ps in LEGACY_REPORT_PHRASES.values() for p in ps]
    assert any(normalise_report(p.replace("p sinistro", "p-sinistro")) != p for p in legacy)


@pytest.mark.parametrize("style", ["normalised", "report"])
def test_every_prompt_of_the_new_styles_is_normalised(style):
    for name, labels in build_label_sets(SCP, style).items():
        for label in labels:
            assert label.prompts, (name, label.name)
            for p in label.prompts:
                assert p == normalise_report(p), (style, name, label.name, p)


def test_scp_style_keeps_the_old_prompts():
    # the prompts of bundles exported before the styles existed (e.g. runs/r2-export's manifest)
    sets = build_label_sets(SCP, "scp")
    norm = next(l for l in sets["superclass"] if l.name == "NORM")
    assert norm.prompts[:2] == ["normal ECG", "sinus rhythm. normal ecg."]
    lae = next(l for l in sets["subclass"] if l.name == "LAO/LAE")
    assert "p sinistrocardiale, left atrial enlargement" in lae.prompts


def test_report_style_adds_the_mined_wording():
    rhythm = {l.name: l.prompts for l in build_label_sets(SCP, "report")["rhythm"]}
    assert set(mined_phrases()["AFIB"]) <= set(rhythm["AFIB"])
    assert code_prompts("1AVB", "first degree AV block", "normalised")[1] == "first degree av block"
    with pytest.raises(ValueError, match="unknown prompt style"):
        build_label_sets(SCP, "fancy")
    assert set(PROMPT_STYLES) == {"scp", "normalised", "report"}


def test_mining_counts_asserted_statements_only():
    reports = ["sinus rhythm. left bundle branch block."] * 5 + ["sinus rhythm. no left bundle branch block."] * 9
    rows = mine(reports, min_count=5)
    assert ("SR", "sinus rhythm", 14) in rows
    assert ("CLBBB", "left bundle branch block", 5) in rows  # the 9 negated ones do not count
    assert all(n >= 5 for _, _, n in rows)
    assert to_csv(rows).splitlines()[0] == "code,phrase,count"


@needs_ptbxl
def test_shipped_phrase_table_is_what_the_miner_writes_from_folds_1_to_8():
    shipped = (ROOT / "ecgreport" / "data" / "report_prompts.csv").read_text(encoding="utf-8")
    assert shipped == to_csv(mine(training_reports(PTBXL)))


# -- likelihood ------------------------------------------------------------------------------

def test_combine_z_is_a_sum_of_column_z_scores():
    a = np.array([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]])
    b = np.array([[30.0, 1.0], [20.0, 2.0], [10.0, 3.0]])
    out = combine_z(a, b)
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-12)  # opposite rankings cancel
    np.testing.assert_allclose(out[:, 1], (b[:, 1] - 2) / b[:, 1].std())  # a constant column adds 0


def test_likelihood_matches_torch_teacher_forcing(tiny_bundle, tiny_checkpoint):
    """The step-by-step ONNX likelihood equals the torch decoder's teacher-forced log-softmax."""
    import torch

    from ecgreport.onnx.runtime import ModelRunner, load_bundle
    from ecgreport.training.checkpoint import load_checkpoint
    from conftest import parity_records

    runner = ModelRunner(load_bundle(tiny_bundle), device="cpu", threads=1)
    x = parity_records(4)
    prompts = ["sinus rhythm", "left axis deviation", "normal ecg", "atrial fibrillation with rapid response"]
    ids = prompt_ids(runner.bundle.tokenizer, prompts, runner.max_tokens)
    got = mean_logprobs(runner, runner.encode(x), ids, max_rows=6)  # several calls, a ragged last one

    model, _, _ = load_checkpoint(tiny_checkpoint)
    model.eval()
    want = np.zeros_like(got)
    with torch.inference_mode():
        _, memory = model.encode(torch.from_numpy(x))
        cross = model.decoder.cross_kv(memory)
        for j, s in enumerate(ids):
            tokens = torch.tensor([s] * len(x))
            logp = torch.log_softmax(model.decoder(tokens[:, :-1], cross).double(), dim=-1)
            want[:, j] = logp.gather(-1, tokens[:, 1:, None])[..., 0].mean(1).numpy()
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert (got < 0).all()


def test_likelihood_scores_are_pmi_against_a_flat_signal(tiny_bundle):
    from ecgreport.onnx.runtime import ModelRunner, load_bundle
    from conftest import parity_records

    runner = ModelRunner(load_bundle(tiny_bundle), device="cpu", threads=1)
    prompts = {"rhythm": [["sinus rhythm"], ["atrial fibrillation", "sinus rhythm"]]}
    scorer = LikelihoodScorer(runner, prompts)
    assert scorer.prompts == ["sinus rhythm", "atrial fibrillation"]
    flat = np.zeros((2, 12, runner.bundle.window_samples), np.float32)
    np.testing.assert_allclose(scorer.scores(runner.encode(flat))["rhythm"], 0.0, atol=1e-5)
    enc = runner.encode(parity_records(3))
    pmi = scorer.prompt_pmi(enc)
    s = scorer.scores(enc)["rhythm"]
    assert s.shape == (3, 2)
    np.testing.assert_allclose(s[:, 0], pmi[:, 0])
    np.testing.assert_allclose(s[:, 1], pmi.mean(axis=1))


# -- decoding --------------------------------------------------------------------------------

def test_beam_hypotheses_are_the_n_best_of_beam_search(tiny_bundle):
    from ecgreport.onnx.runtime import ModelRunner, load_bundle
    from conftest import parity_records

    runner = ModelRunner(load_bundle(tiny_bundle), device="cpu", threads=1)
    enc = runner.encode(parity_records(3))
    for row in range(3):
        hyps = runner.beam_hypotheses(enc, row, runner.max_tokens, 3)
        scores = [s for s, _ in hyps]
        assert scores == sorted(scores, reverse=True)
        assert hyps[0][1] == runner.generate_ids(enc.take([row]), beams=3)[0]


def test_text_scores_read_statements_of_both_texts():
    refs = ["sinus rhythm. left bundle branch block.", "atrial fibrillation."]
    hyps = ["sinus rhythm. left bundle branch block.", "sinus rhythm. normal ecg."]
    s = text_scores(refs, hyps, java=False)
    # The extractor reads a rhythm-only report as NORM too: references {SR, CLBBB}, {AFIB, NORM};
    # hypotheses {SR, CLBBB}, {SR, NORM}: tp 3 (SR, CLBBB, NORM), 4 predicted, 4 true.
    assert s["statement_micro_f1"] == pytest.approx(2 * 3 / (4 + 4))
    # macro over SR, CLBBB, AFIB, NORM: F1 2/(2+1), 1, 0, 1
    assert s["statement_macro_f1"] == pytest.approx((2 / 3 + 1 + 0 + 1) / 4)
    assert s["statement_codes"] == 4
    assert "BLEU-4" in s


def test_choose_decoder_rule():
    rows = {n: {"METEOR": 0.2, "statement_macro_f1": 0.3} for n in DECODERS}
    rows["retrieval consensus"] = {"METEOR": 0.4, "statement_macro_f1": 0.5}   # best, but not in batch
    rows["beam-5"] = {"METEOR": 0.3, "statement_macro_f1": 0.29}               # better METEOR, lower F1
    rows["beam-3"] = {"METEOR": 0.25, "statement_macro_f1": 0.3}
    assert choose_decoder(rows)[0] == "beam-3"
    assert choose_decoder(rows, affordable={"model+retrieval consensus"})[0] == "greedy"  # beam-3 too slow
    assert choose_decoder(rows, runnable_only=False)[0] == "retrieval consensus"
    assert BUNDLE_SETTING["retrieval consensus"] is None
    rows["beam-3"]["statement_macro_f1"] = 0.1
    rows["model+retrieval consensus"]["METEOR"] = 0.1
    assert choose_decoder(rows)[0] == "greedy"  # nothing qualifies above the baseline: keep it


# -- export and the script -------------------------------------------------------------------

def test_export_writes_the_default_prompts(tiny_bundle):
    from ecgreport.prompts import DEFAULT_PROMPT_STYLE

    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    shipped = {l["name"]: l["prompts"] for l in manifest["label_sets"]["subclass"]["labels"]}
    want = {l.name: l.prompts for l in build_label_sets(SCP, DEFAULT_PROMPT_STYLE)["subclass"]}
    assert shipped == want


def test_choose_scoring_script_runs_on_the_fixtures(tiny_bundle, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import choose_scoring

    choose_scoring.main(["--model", str(tiny_bundle), "--data", str(PTBXL_MINI), "--json", str(tmp_path / "r.json"),
                         "--markdown", str(tmp_path / "r.md"), "--cache", str(tmp_path / "cache")])
    res = json.loads((tmp_path / "r.json").read_text())
    assert set(res["prompts"]["rows"]) == {"bundle's own prompts"} | {f"prompts: {s}" for s in PROMPT_STYLES}
    assert set(res["decoding"]["rows"]) == set(DECODERS)
    assert res["decoding"]["chosen"] in DECODERS
    assert res["scoring"]["likelihood_ms_per_record"] > 0
    assert list((tmp_path / "cache").glob("train-emb-*.npz"))  # the tiny bundle has no retrieval data
    out = capsys.readouterr().out
    assert out == (tmp_path / "r.md").read_text()
    assert "PTBTokenizer" not in out  # pycocoevalcap's chatter stays off stdout
