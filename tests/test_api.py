"""The Python API as docs/api.md shows it: its first example is executed here as written."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_import_is_cheap_and_names_the_api():
    import subprocess
    import sys

    code = "import sys, iftscope; print('torch' in sys.modules); print(sorted(iftscope.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "False"  # the API loads on first use
    assert "run_study" in out and "load_run" in out and "probe_model" in out


def test_unknown_attribute_is_an_error():
    import iftscope

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        iftscope.nope  # noqa: B018


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "H on held-out known people:" in out and "report.html" in out
    assert (tmp_path / "runs" / "api-demo" / "report" / "report.html").exists()


def test_load_run_refuses_an_unfinished_folder(tmp_path):
    import iftscope

    with pytest.raises(FileNotFoundError, match="no finished study"):
        iftscope.load_run(tmp_path)
