"""Signal checks (ecgreport.signal.checks) and limb-lead derivation (ecgreport.signal.limb).

A clean record from the sample generator (scripts/make_sample_ecgs.py: a dipole model,
with baseline wander and 10 uV of noise) passes every check; each check fires on that
record made to fail it; the real fixture records pass the checks that concern the
recording set-up (consistency, polarity, amplitude).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_headers, write_record
from ecgreport.leads import STANDARD_LEADS
from ecgreport.records import read_record
from ecgreport.signal import checks as C
from ecgreport.signal.limb import derive_limb_leads

ROW = {lead: i for i, lead in enumerate(STANDARD_LEADS)}
ALL = np.ones(12, bool)


def _generator():
    path = Path(__file__).resolve().parents[1] / "scripts" / "make_sample_ecgs.py"
    spec = importlib.util.spec_from_file_location("make_sample_ecgs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def clean(fs: int = 100, rate: float = 70, seed: int = 1001) -> np.ndarray:
    """A synthetic 12-lead, 10 s record ``(12, 10 * fs)`` mV (sinus rhythm)."""
    leads, _ = GEN.simulate(GEN.Spec("t", rate, fs, 10, seed, "test"))
    return leads.astype(np.float32)


def codes(x: np.ndarray, fs: float = 100.0, mask=ALL, derived=()) -> list[str]:
    return C.check_signal(x, fs, mask, derived).codes


# ---------------------------------------------------------------- clean records pass


@pytest.mark.parametrize("fs", [100, 250, 500])
@pytest.mark.parametrize("rate", [45, 70, 125])
def test_clean_synthetic_record_passes_every_check(fs, rate):
    result = C.check_signal(clean(fs, rate), float(fs), ALL)
    assert result.findings == [] and result.verdict == C.GOOD


@pytest.mark.parametrize("hea", fixture_headers("ptb-xl-mini", "challenge-2021"))
def test_real_records_have_consistent_leads_and_plausible_polarity(hea):
    rec = read_record(hea)
    found = C.check_signal(rec.signal_mv, rec.fs_hz, rec.lead_mask, rec.derived_leads).codes
    assert not {"limb_leads_inconsistent", "amplitude_implausible", "polarity_inverted"} & set(found)


# ---------------------------------------------------------------- each check made to fail


def test_swapped_i_and_ii_named():
    x = clean()
    x[[0, 1]] = x[[1, 0]]
    result = C.check_signal(x, 100.0, ALL)
    assert result.codes == ["limb_leads_inconsistent"]
    assert "III = II - I not met" in result.warnings[0]
    assert result.warnings[0].endswith("leads I and II look swapped (mislabelled channels)")
    assert result.verdict == C.ACCEPTABLE


def test_swapped_avl_and_avf_caught_by_goldberger():
    # aVR + aVL + aVF stays 0 after this swap; aVL = I - II/2 does not.
    x = clean()
    x[[4, 5]] = x[[5, 4]]
    result = C.check_signal(x, 100.0, ALL)
    assert result.codes == ["limb_leads_inconsistent"]
    assert "leads aVL and aVF look swapped" in result.warnings[0]


def test_one_inverted_limb_lead_named():
    x = clean()
    x[ROW["aVL"]] *= -1
    result = C.check_signal(x, 100.0, ALL)
    assert result.codes == ["limb_leads_inconsistent"]
    assert result.warnings[0].endswith("lead aVL looks inverted")


def test_all_leads_inverted():
    result = C.check_signal(-clean(), 100.0, ALL)
    assert result.codes == ["polarity_inverted"]
    assert "whole record looks inverted" in result.warnings[0]


def test_arm_electrodes_reversed():
    x = clean()
    x[0] = -x[0]
    x[[1, 2]] = x[[2, 1]]
    x[[3, 4]] = x[[4, 3]]
    result = C.check_signal(x, 100.0, ALL)
    # The identities still hold (an electrode reversal, not a mislabelled channel).
    assert result.codes == ["arm_leads_reversed"]
    assert "arm electrodes probably reversed" in result.warnings[0]


@pytest.mark.parametrize("factor", [10.0, 1000.0, 1e-3])
def test_implausible_amplitude_is_unreadable(factor):
    result = C.check_signal(clean() * factor, 100.0, ALL)
    assert result.codes == ["amplitude_implausible"] and result.verdict == C.UNREADABLE
    assert "wrong units or gain" in result.warnings[0]


def test_lead_off_for_part_of_the_record():
    x = clean()
    x[ROW["V2"], 300:800] = x[ROW["V2"], 299]
    result = C.check_signal(x, 100.0, ALL)
    assert result.codes == ["lead_off"] and result.findings[0].leads == ("V2",)
    assert result.verdict == C.ACCEPTABLE


@pytest.mark.parametrize("fs", [100, 500])
def test_saturation(fs):
    x = clean(fs)
    v = x[ROW["V3"]]
    x[ROW["V3"]] = np.minimum(v, np.median(v) + 0.4 * (v.max() - np.median(v)))
    result = C.check_signal(x, float(fs), ALL)
    assert result.codes == ["saturation"] and result.findings[0].leads == ("V3",)


def with_electrode_noise(x: np.ndarray, rms_mv: float, rng) -> np.ndarray:
    """Noise on the 8 independent leads, the other limb leads derived from I and II as an
    electrocardiograph does (independent noise on all 12 would break the identities)."""
    x = x + rng.normal(0, rms_mv, x.shape).astype(np.float32)
    mask = ALL.copy()
    mask[2:6] = False
    derive_limb_leads(x, mask)
    return x


def test_static_noise_and_severe_noise():
    rng = np.random.default_rng(0)
    x = clean()
    result = C.check_signal(with_electrode_noise(x, 0.1, rng), 100.0, ALL)
    assert result.codes == ["static_noise"] and result.warnings[0].endswith("all leads")
    result = C.check_signal(with_electrode_noise(x, 0.5, rng), 100.0, ALL)
    assert result.codes == ["static_noise"] and result.verdict == C.UNREADABLE


def test_burst_noise_in_one_lead():
    rng = np.random.default_rng(0)
    x = clean()
    x[ROW["V1"], 400:500] += rng.normal(0, 0.3, 100).astype(np.float32)
    result = C.check_signal(x, 100.0, ALL)
    assert result.codes == ["burst_noise"] and result.findings[0].leads == ("V1",)


def test_baseline_drift():
    x = clean()
    t = np.arange(x.shape[1]) / 100
    x[6:] += (1.5 * np.sin(2 * np.pi * 0.15 * t)).astype(np.float32)
    result = C.check_signal(x, 100.0, ALL)
    assert result.codes == ["baseline_drift"]
    assert result.findings[0].leads == ("V1", "V2", "V3", "V4", "V5", "V6")


def test_a_third_of_the_leads_off_is_unreadable():
    x = clean()
    for lead in ("V1", "V2", "V3", "V4"):
        x[ROW[lead], 200:900] = 0.0
    result = C.check_signal(x, 100.0, ALL)
    assert "lead_off" in result.codes and result.verdict == C.UNREADABLE


def test_zero_filled_and_derived_leads_are_not_checked():
    x = clean()
    mask = ALL.copy()
    mask[ROW["V4"]] = False
    x[ROW["V4"]] = 0.0  # zero-filled: would be "lead off" if it were checked
    x[ROW["III"]] = x[ROW["II"]] - x[ROW["I"]]
    assert codes(x, mask=mask, derived=("III",)) == []


def test_windows_of_a_long_record_are_merged():
    x = clean()
    bad = x.copy()
    bad[[0, 1]] = bad[[1, 0]]
    fields = C.check_record([x, bad], [0, 36000], 100.0, ALL)
    assert fields["quality"] == C.ACCEPTABLE
    [finding] = fields["signal_checks"]
    assert finding["check"] == "limb_leads_inconsistent"
    assert finding["message"].startswith("at 360 s: limb leads inconsistent")
    assert finding["leads"] == ["I", "II", "III", "aVR", "aVL", "aVF"]


# ---------------------------------------------------------------- too few leads


def test_too_few_leads_names_the_leads_found():
    mask = np.zeros(12, bool)
    mask[:6] = True
    assert C.too_few_leads(mask, ["III", "aVR", "aVL", "aVF"], ["I", "II"], 6) is None
    reason = C.too_few_leads(mask, ["III", "aVR", "aVL", "aVF"], ["I", "II"], 7)
    assert reason == ("too few leads: 6 usable of the 12 standard leads (I, II, III (derived), "
                      "aVR (derived), aVL (derived), aVF (derived); the record holds I, II), "
                      "at least 7 needed (--min-leads)")


# ---------------------------------------------------------------- derived limb leads


@pytest.mark.parametrize("basis", [("I", "II"), ("I", "III"), ("II", "III")])
def test_limb_leads_derived_exactly_from_any_two(basis):
    full = clean().astype(np.float64)
    x = full.copy()
    mask = np.array([lead in basis or lead.startswith("V") for lead in STANDARD_LEADS])
    x[~mask] = 0
    derived = derive_limb_leads(x, mask)
    assert derived == [lead for lead in STANDARD_LEADS[:6] if lead not in basis]
    assert mask.all()
    np.testing.assert_allclose(x, full, rtol=0, atol=1e-6)  # the generator's own leads


def test_reader_derives_missing_limb_leads_exactly(tmp_path):
    full = clean()
    keep = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    hea = write_record(tmp_path, "eight", full[[ROW[k] for k in keep]].T, keep, adc_gain=1000.0)
    rec = read_record(hea)
    assert rec.derived_leads == ["III", "aVR", "aVL", "aVF"] and rec.lead_mask.all()
    assert "derived leads III, aVR, aVL, aVF from I and II (Einthoven, Goldberger)" in rec.warnings
    # The generator's limb leads are the same identities of its (1 uV-rounded) I and II.
    np.testing.assert_allclose(rec.signal_mv[:6], full[:6], rtol=0, atol=1e-6)
    assert C.check_signal(rec.signal_mv, rec.fs_hz, rec.lead_mask, rec.derived_leads).findings == []


def test_nothing_derived_from_one_limb_lead():
    x = np.zeros((12, 100), np.float32)
    x[1] = 1.0
    mask = np.arange(12) == 1
    assert derive_limb_leads(x, mask) == [] and mask.sum() == 1


def test_last_value_held_at_the_end_is_not_saturation():
    # Seen in real records (PTB-XL, PhysioNet Challenge 2021): the recorder repeats its
    # last sample for the final ~0.1 s.
    x = clean(500)
    x[:, -60:] = x[:, -61:-60]
    x[ROW["V4"], -60:] = x[ROW["V4"]].max()
    assert codes(x, 500.0) == []
