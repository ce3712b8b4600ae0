"""scripts/ludb_truth.py: every mapping rule on a phrase as LUDB writes it, the truth CSVs in the
format `ecgreport evaluate --truth` reads, the results section; on real LUDB when it is there."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ecgreport.evaluation.truth import read_truth

ROOT = Path(__file__).resolve().parents[1]
LUDB = ROOT.parent / "shared" / "data" / "ludb"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lt = _load("ludb_truth")
RULES = lt.read_rules()
BUNDLE_SETS = {name: s["labels"] for name, s in
               json.loads((ROOT / "export" / "manifest.json").read_text())["label_sets"].items()}
BUNDLE_SETS = {name: [lab if isinstance(lab, str) else lab["name"] for lab in labels]
               for name, labels in BUNDLE_SETS.items()}

# Header comment lines as LUDB writes them -> what the rules must give (set:label; set:exclude).
PHRASES = {
    "#Rhythm: Sinus rhythm.": {"rhythm:SR"},
    "#Rhythm: Sinus bradycardia.": {"rhythm:SBRAD"},
    "#Rhythm: Sinus tachycardia.": {"rhythm:STACH"},
    "#Rhythm: Sinus arrhythmia.": {"rhythm:SARRH"},
    "#Rhythm: Atrial fibrillation.": {"rhythm:AFIB"},
    "#Rhythm: Atrial flutter, typical.": {"rhythm:AFLT"},
    "#UNIpolar ventricular pacing. ": {"rhythm:PACE"},
    "#Biventricular pacing.": {"rhythm:PACE"},
    "#Pacemaker presence, undefined.": {"rhythm:PACE"},
    "#Ventricular extrasystole, type: couplet.": {"form:PVC"},
    "#Atrial extrasystole: SA-nodal extrasystole.": {"form:PAC"},
    "#Left ventricular hypertrophy. ": {"subclass:LVH", "superclass:HYP"},
    "#Right ventricular hypertrophy.": {"subclass:RVH", "superclass:HYP"},
    "#Left atrial hypertrophy.": {"subclass:LAO/LAE", "superclass:HYP"},
    "#Left atrial overload.": {"subclass:LAO/LAE", "superclass:HYP"},
    "#Right atrial overload.": {"subclass:RAO/RAE", "superclass:HYP"},
    "#Complete left bundle branch block.": {"subclass:CLBBB", "superclass:CD"},
    "#Incomplete left bundle branch block.": {"subclass:ILBBB", "superclass:CD"},
    "#Complete right bundle branch block.": {"subclass:CRBBB", "superclass:CD"},
    "#Incomplete right bundle branch block.": {"subclass:IRBBB", "superclass:CD"},
    "#Left anterior hemiblock.": {"subclass:LAFB/LPFB", "superclass:CD"},
    "#I degree AV block.": {"subclass:_AVB", "superclass:CD"},
    "#III degree AV-block.": {"subclass:_AVB", "superclass:CD"},
    "#Non-specific intravintricular conduction delay.": {"subclass:IVCD", "superclass:CD"},
    "#STEMI: septal.": {"superclass:MI"},
    "#Scar formation: posterior wall.": {"superclass:MI"},
    "#Ischemia: inferior wall.": {"superclass:STTC"},
    "#Non-specific repolarization abnormalities: apical.": {"superclass:STTC"},
    "#Undefined ischemia/scar/supp.NSTEMI: lateral wall.": {"superclass:exclude"},
    # Not mapped: no PTB-XL label of the bundle's sets says the same thing.
    "#Left ventricular overload.": set(),
    "#Wandering atrial pacemaker.": set(),
    "#Electric axis of the heart: left axis deviation.": set(),
    "#Early repolarization syndrome.": set(),
    "#Sinoatrial blockade, undefined.": set(),
    "#Aberrant conduction.": set(),
    "#<age>: 51": set(),
}


def _given(header_line: str) -> set[str]:
    lines = [header_line[1:].strip().rstrip(".").strip().lower()] if not header_line.startswith("#<") else []
    return {f"{s}:{label}" for s, label in lt.labels_of(lines, RULES)}


@pytest.mark.parametrize("phrase", list(PHRASES))
def test_each_phrase_maps_to_what_ptbxl_calls_it(phrase):
    assert _given(phrase) == PHRASES[phrase]


def test_every_rule_is_exercised_by_a_phrase():
    lines = [p[1:].strip().rstrip(".").strip().lower() for p in PHRASES]
    unused = [r.pattern.pattern for r in RULES if not any(r.pattern.search(line) for line in lines)]
    assert unused == []


def test_every_target_is_a_label_of_the_shipped_bundle():
    for rule in RULES:
        assert rule.why.strip(), rule.pattern.pattern
        for s, label in rule.targets:
            assert label == lt.EXCLUDE or label in BUNDLE_SETS[s], (s, label)


def _write_headers(folder: Path, records: dict[str, list[str]]) -> None:
    folder.mkdir(parents=True)
    for rid, comments in records.items():
        (folder / f"{rid}.hea").write_text(f"{rid} 12 500 5000\n" + "\n".join(comments) + "\n")


def test_truth_csvs_are_what_evaluate_reads(tmp_path):
    _write_headers(tmp_path / "ludb" / "data", {
        "1": ["#<age>: 51", "#<diagnoses>:", "#Rhythm: Sinus bradycardia.", "#Left ventricular hypertrophy. "],
        "3": ["#Rhythm: Atrial fibrillation.", "#UNIpolar ventricular pacing.",
              "#Undefined ischemia/scar/supp.NSTEMI: apical."],
        "10": ["#Rhythm: Sinus rhythm.", "#STEMI: anterior wall."],
    })
    assert lt.main([str(tmp_path / "ludb"), "--out", str(tmp_path / "truth")]) == 0
    files = sorted(p.name for p in (tmp_path / "truth").glob("*.csv"))
    assert files == ["form.csv", "rhythm.csv", "subclass.csv", "superclass.csv"]
    tables = {}
    for s in ("form", "rhythm", "subclass", "superclass"):
        ids, classes, y = read_truth(tmp_path / "truth" / f"{s}.csv", BUNDLE_SETS[s], s)
        tables[s] = {rid: {c for c, v in zip(classes, row) if v} for rid, row in zip(ids, y)}
        assert classes == lt.mapped_labels(RULES)[s]
    assert list(tables["rhythm"]) == ["1", "3", "10"]  # numeric order, ids as dataset build writes them
    assert tables["rhythm"] == {"1": {"SBRAD"}, "3": {"AFIB", "PACE"}, "10": {"SR"}}
    assert tables["subclass"]["1"] == {"LVH"} and tables["subclass"]["3"] == set()
    # Record 3's "undefined ischemia/scar" may be MI or STTC: it leaves the superclass table only.
    assert tables["superclass"] == {"1": {"HYP"}, "10": {"MI"}}
    with (tmp_path / "truth" / "rhythm.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert header[0] == "record_id"


def test_section_replaces_itself_and_survives_make_results(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nabove\n")
    lt.write_section(doc, ["## Foreign data: LUDB", "first"])
    lt.write_section(doc, ["## Foreign data: LUDB", "second"])
    text = doc.read_text()
    assert text.count(lt.START) == 1 and "second" in text and "first" not in text and "above" in text
    mr = _load("make_results")
    assert mr._foreign_block(doc)[0] == "\n".join([lt.START, "## Foreign data: LUDB", "second", lt.END])


@pytest.mark.skipif(not (LUDB / "data").is_dir(), reason=f"LUDB not at {LUDB} (not part of the repository)")
def test_real_ludb_agrees_with_its_table_and_measures(tmp_path):
    records = lt.read_ludb(LUDB)
    assert len(records) == 100
    tables = lt.truth_tables(records, RULES)
    # The headers' diagnoses against LUDB's own table (ludb.csv), read independently.
    with (LUDB / "ludb.csv").open(newline="") as f:
        rows = {r["ID"]: r for r in csv.DictReader(f)}
    labels, ids, y = tables["rhythm"]
    for label, phrase in (("SR", "Sinus rhythm"), ("SBRAD", "Sinus bradycardia"), ("AFIB", "Atrial fibrillation")):
        ours = {rid for rid, row in zip(ids, y) if row[labels.index(label)]}
        assert ours == {rid for rid, r in rows.items() if phrase in r["Rhythms"].splitlines()}, label
    ours = {rid for rid, row in zip(ids, y) if row[labels.index("PACE")]}
    assert ours == {rid for rid, r in rows.items() if r["Cardiac pacing"].strip()}
    labels, ids, y = tables["subclass"]
    ours = {rid for rid, row in zip(ids, y) if row[labels.index("LVH")]}
    assert ours == {rid for rid, r in rows.items() if "Left ventricular hypertrophy" in r["Hypertrophies"]}

    # The whole measurement: dataset, evaluate --truth, the section (AUCs checked against evaluate's).
    ds = tmp_path / "ludb-ds"
    subprocess.run([sys.executable, "-m", "ecgreport", "dataset", "build", str(LUDB / "data"), "--out", str(ds),
                    "--quiet"], check=True)
    doc = tmp_path / "results.md"
    assert lt.main([str(LUDB), "--out", str(ds / "truth"), "--doc", str(doc), "--data", str(ds),
                    "--bootstrap", "50"]) == 0
    res = json.loads((ds / "truth" / "evaluate.json").read_text())
    assert res["n_records"] == 100
    text = doc.read_text()
    assert "## Foreign data: LUDB" in text and "Kalyakulina" in text and "| `AFIB` | 8 |" in text
