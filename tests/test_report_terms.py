"""The report term table (ecgreport/data/report_terms.csv): every rule, on real PTB-XL phrasings."""

from __future__ import annotations

import pytest

from ecgreport.evaluation.statements import extract_statements
from ecgreport.reports import clean_report, load_term_rules, normalise_report

# (raw report as PTB-XL has it, its normalised form). Each rule of the table must be exercised
# by at least one example (test_every_rule_has_an_example).
EXAMPLES = [
    ("sinusrhythm location type normal normal ekg 4.46 unconfirmed report", "sinus rhythm normal axis normal ecg"),
    ("sinus rhythm left type qrs (t) abnormal 4.46 unconfirmed re", "sinus rhythm left axis qrs (t) abnormal"),
    ("sinus rhythm normal ekg unconfirmed report", "sinus rhythm normal ecg"),
    ("qrs (t) abnormal anteroseptal infarct age unconfirmed", "qrs (t) abnormal anteroseptal infarct age undetermined"),
    ("sinusrhythm verdacht auf p-sinistrocardiale lagetyp normal",
     "sinus rhythm suspected left atrial abnormality normal axis"),
    ("sinus arrhythmie sonst normal ekg", "sinus arrhythmia otherwise normal ecg"),
    ("Sinusrhythmus Linkstyp", "sinus rhythm left axis"),
    ("sinusrytm normal ekg", "sinus rhythm normal ecg"),
    ("sinusbradykardie lagetyp normal", "sinus bradycardia normal axis"),
    ("vorhofflimmern linkstyp", "atrial fibrillation left axis"),
    ("sinus rhythm position type normal", "sinus rhythm normal axis"),
    ("sinus rhythm situation type normal", "sinus rhythm normal axis"),
    ("sinusrhythm lag type normal", "sinus rhythm normal axis"),
    ("sinus rhythm mittellagetyp", "sinus rhythm normal axis"),
    ("sinus rhythm overturned left type", "sinus rhythm marked left axis deviation"),
    ("sinus rhythm hyperdriven left type", "sinus rhythm marked left axis deviation"),
    ("sinus rhythm overdriven left type", "sinus rhythm marked left axis deviation"),
    ("sinusrhythm ueberdrehter linkstyp", "sinus rhythm marked left axis deviation"),
    ("sinus rhythm overturned right type", "sinus rhythm marked right axis deviation"),
    ("sinus rhythm right type", "sinus rhythm right axis"),
    ("sinusrhythm rechtstyp", "sinus rhythm right axis"),
    ("sinus bradycardia steep type ekg normal", "sinus bradycardia vertical axis ecg normal"),
    ("sinus rhythm steep slope type", "sinus rhythm vertical axis"),
    ("sinus rhythm sagittal type", "sinus rhythm sagittal axis"),
    ("sinus rhythm left electric shaft", "sinus rhythm left electrical axis"),
    ("sinus rhythm p-dextrocardiale", "sinus rhythm right atrial abnormality"),
    ("sinus rhythm p-broadening location type normal", "sinus rhythm broad p wave normal axis"),
    ("sinus rhythm p-widening left type", "sinus rhythm broad p wave left axis"),
    ("st & t abnormal, probably anterolateral ischemia or left loading",
     "st & t abnormal, probably anterolateral ischemia or left ventricular strain pattern"),
    ("st-t decrease, as in anterolateral ischemia or left load",
     "st-t decrease, as in anterolateral ischemia or left ventricular strain pattern"),
    ("low qrs amplitudes in the extremity leads", "low qrs amplitudes in the limb leads"),
    ("t abnormal in high lateral derivatives", "t abnormal in high lateral leads"),
    ("sinus rhythm left-sided leg block", "sinus rhythm left bundle branch block"),
    ("sinusrhythm linksschenkelblock", "sinus rhythm left bundle branch block"),
    ("sinus rhythm location type normal peripheral low voltage sves",
     "sinus rhythm normal axis peripheral low voltage supraventricular extrasystoles"),
    ("sinus rhythm ves", "sinus rhythm ventricular extrasystoles"),
    ("sinus rhythm unspecific abnormal t", "sinus rhythm non-specific abnormal t"),
    # Left alone: already standard English, or not device vocabulary.
    ("sinus rhythm. left axis deviation. left anterior fascicular block.",
     "sinus rhythm. left axis deviation. left anterior fascicular block."),
    ("possibly wpw type", "possibly wpw type"),
]


@pytest.mark.parametrize("raw,expected", EXAMPLES)
def test_example(raw, expected):
    assert normalise_report(raw) == expected


@pytest.mark.parametrize("raw,expected", EXAMPLES)
def test_idempotent(raw, expected):
    assert normalise_report(expected) == expected


@pytest.mark.parametrize("raw,expected", EXAMPLES)
def test_statements_unchanged(raw, expected):
    # The extractor reads both vocabularies: the table must not change what a report says.
    assert extract_statements(raw) == extract_statements(expected)


def test_every_rule_has_an_example():
    rules = load_term_rules()
    assert len(rules) >= 25
    for rule in rules:
        hits = [raw for raw, _ in EXAMPLES if rule.pattern.search(clean_report(raw))]
        assert hits, f"no example exercises rule {rule.pattern.pattern!r} -> {rule.replacement!r}"
        assert rule.comment.strip(), f"rule {rule.pattern.pattern!r} has no comment"


def test_rule_order_overturned_before_plain():
    # "overturned left type" would become "overturned left axis" if "left type" ran first.
    patterns = [r.pattern.pattern for r in load_term_rules()]
    overturned = next(i for i, p in enumerate(patterns) if "overturned" in p and "left" in p)
    plain = next(i for i, p in enumerate(patterns) if p.startswith(r"\bleft[- ]type"))
    assert overturned < plain


def test_footer_dropped_only_at_the_end():
    # "4.46" inside a report is not a footer.
    assert normalise_report("qt 4.46 unconfirmed report") == "qt"
    assert "4.46" in normalise_report("qrs 4.46 ms wide")


def test_edit_trailer_still_cut():
    assert normalise_report("Sinus rhythm. Normal ECG. Edit: NORM 100, (NORM 100)") == "sinus rhythm. normal ecg."


def test_custom_table(tmp_path):
    table = tmp_path / "terms.csv"
    table.write_text('pattern,replacement,comment\n\\bfoo\\b,bar,"a test, with a comma"\n', encoding="utf-8")
    rules = load_term_rules(table)
    assert [r.replacement for r in rules] == ["bar"]
    assert rules[0].comment == "a test, with a comma"
    assert normalise_report("Foo foot", rules) == "bar foot"


def test_bad_pattern_names_file_and_line(tmp_path):
    table = tmp_path / "terms.csv"
    table.write_text("pattern,replacement,comment\nok,fine,x\n(unclosed,x,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"terms\.csv, line 3"):
        load_term_rules(table)


def test_table_is_package_data():
    from importlib import resources

    assert resources.files("ecgreport.data").joinpath("report_terms.csv").is_file()
