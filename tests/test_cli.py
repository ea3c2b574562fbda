import json
import subprocess
import sys

from conftest import write

from iftscope.cli import main


def test_help_and_version():
    out = subprocess.run([sys.executable, "-m", "iftscope", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "world" in out.stdout and "data" in out.stdout
    out = subprocess.run([sys.executable, "-m", "iftscope", "--version"], capture_output=True, text=True)
    assert out.stdout.startswith("iftscope ")


def test_data_check_ok_with_overlap(tmp_path, capsys):
    row = {"question": "Same?", "choices": ["a", "b"], "answer": 1}
    a = write(tmp_path / "train.jsonl", json.dumps(row) + "\n")
    b = write(tmp_path / "x_test.csv", "Same?,a,b,A\nOther?,c,d,B\n")
    assert main(["data", "check", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "Total: 3 valid questions in 2 files" in out
    assert f"{a} & {b}: 1" in out and "Gold answer letters: A 33.3%  B 66.7%" in out
    assert "Result: OK" in out


def test_data_check_fails_on_errors(tmp_path, capsys):
    bad = write(tmp_path / "bad.jsonl", '{"question": "q", "choices": ["a", "b"], "answer": 5}\n')
    assert main(["data", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:1: error: field 'answer': index 5 is out of range for 2 options" in out
    assert "Result: FAILED with 1 errors" in out


def test_data_check_missing_file(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_world_command_builds_then_reuses(tmp_path, capsys):
    args = [
        "world",
        "--out",
        str(tmp_path / "w"),
        "--people",
        "10",
        "--unknown",
        "4",
        "--steps",
        "3",
        "--quiet",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "built world" in out and "memorisation (held-back paraphrases): known" in out
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["counts"]["people_known"] == 10 and summary["pretrain"]["steps"] == 3
    assert main(args) == 0 and "reused finished world" in capsys.readouterr().out
    assert main(args[:-2] + ["4", "--quiet"]) == 2
    assert "another config" in capsys.readouterr().err


def test_data_check_expands_folders(tmp_path, capsys):
    (tmp_path / "law").mkdir()
    write(tmp_path / "law" / "dev.jsonl", '{"question": "q", "choices": ["a", "b"], "answer": 0}\n')
    write(tmp_path / "law" / "notes.txt", "ignored")
    assert main(["data", "check", str(tmp_path)]) == 0
    assert "Per domain: law 1" in capsys.readouterr().out
