"""The one ``--labels`` CSV reader: what it accepts, and an error naming file and line for
everything else; ``batch`` and ``export-onnx`` both read through it."""

from __future__ import annotations

import pytest

from ecgreport import labelsets
from ecgreport.errors import ExitCode, LabelsFileError, UsageError


def write(tmp_path, text: str | bytes, name: str = "labels.csv"):
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def test_reads_labels_in_order_with_extra_prompts(tmp_path):
    path = write(tmp_path, "\ufefflabel,description,prompt,prompt\n"
                           'LVH,left ventricular hypertrophy,"lvh, with strain",\n'
                           "\n"
                           "AF , atrial fibrillation \n"
                           '"QUOTE","a ""quoted"" word\nover two lines"\n')
    labels = labelsets.read_labels_csv(path)
    assert list(labels) == ["LVH", "AF", "QUOTE"]
    assert labels["LVH"] == ["left ventricular hypertrophy", "lvh, with strain"]
    assert labels["AF"] == ["atrial fibrillation"]
    assert labels["QUOTE"] == ['a "quoted" word\nover two lines']


@pytest.mark.parametrize("text, line, problem", [
    ("label;description\nLVH;left ventricular hypertrophy\n", 1, "separated by ';'"),
    ("label,description\nLVH;left ventricular hypertrophy\n", 2, "separated by ';'"),
    ("label\nLVH\n", 1, "one column"),
    ("label,description\nLVH\n", 2, "'LVH' has no description"),
    ("label,description\nLVH,\n", 2, "'LVH' has an empty description"),
    ("label,description\nLVH,  \n", 2, "'LVH' has an empty description"),
    ("label,description\n,left ventricular hypertrophy\n", 2, "label (first column) is empty"),
    ('label,description\nLVH,"left ventricular\nAF,atrial fibrillation\n', 2, "never closed"),
    ('label,description\nLVH,"lvh"x\n', 2, "not valid CSV"),
    ("label,description\nLVH,a\nAF,b\nLVH,c\n", 4, "'LVH' appears twice (first on line 2)"),
    ("LVH,left ventricular hypertrophy\n", 1, "must be the header 'label,description'"),
    ("name,text\nLVH,left ventricular hypertrophy\n", 1, "must be the header"),
    (b"label,description\nLVH,caf\xe9\n", 2, "not UTF-8"),
    (b"label,description\nLVH,a\x00b\n", 2, "NUL byte"),
])
def test_each_malformed_file_is_an_error_naming_file_and_line(tmp_path, text, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(LabelsFileError) as err:
        labelsets.read_labels_csv(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line {line}: "), message
    assert problem in message
    assert isinstance(err.value, UsageError) and err.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("text, problem", [("", "is empty"), ("\n\n", "is empty"),
                                           ("label,description\n", "no labels")])
def test_empty_files(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(LabelsFileError, match=problem) as err:
        labelsets.read_labels_csv(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(LabelsFileError, match="cannot read the labels file .*nope.csv"):
        labelsets.read_labels_csv(tmp_path / "nope.csv")


def test_one_parser_for_batch_and_export():
    """Both commands import the reader from ecgreport.labelsets; no second parser remains."""
    import inspect

    import ecgreport.batch
    import ecgreport.prompts

    assert ecgreport.batch.read_labels_csv is labelsets.read_labels_csv
    assert not hasattr(ecgreport.batch, "_read_labels_csv")
    assert not hasattr(ecgreport.prompts, "read_label_csv")
    pytest.importorskip("torch")
    import ecgreport.onnx.export

    assert ecgreport.onnx.export.read_labels_csv is labelsets.read_labels_csv
    assert "csv.reader" not in inspect.getsource(ecgreport.onnx.export)


def test_batch_rejects_a_bad_labels_file_with_exit_2(tmp_path):
    """Through the CLI: exit 2 and the message with file and line, before any model loads."""
    from typer.testing import CliRunner

    from ecgreport.cli import app

    (tmp_path / "in").mkdir()
    from conftest import ecg_like, write_record

    write_record(tmp_path / "in", "r", ecg_like(1000, 12), ["I", "II", "III", "aVR", "aVL", "aVF",
                                                            "V1", "V2", "V3", "V4", "V5", "V6"])
    labels = write(tmp_path, "label;description\nLVH;lvh\n")
    result = CliRunner().invoke(app, ["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--labels", str(labels), "--model", str(tmp_path / "no-model")])
    assert result.exit_code == 2, result.output
    assert f"{labels}, line 1: the columns are separated by ';'" in " ".join(result.output.split())
