"""Parquet copies of runs.csv and the per-question records (issue 18 item 4): read back with pandas,
the same columns and numbers as the CSV/JSONL; atomic; skipped or refused without pyarrow."""

import json

import pandas as pd
import pytest
from test_study import TINY

from iftscope import extras
from iftscope.parquet import jsonl_twins, parquet_enabled, write_parquet
from iftscope.runfolder import Job, RunFolder, parquet_twin
from iftscope.study.recipe import load_recipe
from iftscope.study.runner import Study
from iftscope.study.validate import problems

pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("parquet-study")
    cfg, _ = load_recipe(None, [*TINY, "seeds=[0]", "groups=[H]", "render.styles=[answer]", "parquet=true"])
    Study(cfg, out, progress=False).run()
    return RunFolder(out)


def test_runs_parquet_is_runs_csv(study):
    csv, parquet = pd.read_csv(study.runs_csv), pd.read_parquet(study.runs_parquet)
    assert study.runs_parquet == study.analysis / "runs.parquet"
    assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv) > 0
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False, rtol=1e-12)
    assert parquet["accuracy"].dtype == "float64" and parquet["seed"].dtype == "int64"


def test_every_record_file_has_its_parquet_copy(study):
    files = [study.probe_records] + [
        study.eval_records(name, s)
        for name in ("base", Job(0, "H", "answer"))
        for s in ("known-heldout", "unknown", "heldout-attribute")
    ]
    for src in files:
        rows = [json.loads(line) for line in src.read_text().splitlines()]
        table = pd.read_parquet(parquet_twin(src))
        assert list(table.columns) == list(rows[0]) and len(table) == len(rows) > 0, src
        assert table["question_id"].tolist() == [r["question_id"] for r in rows]
        assert table["correct"].tolist() == [r["correct"] for r in rows]
        assert [list(d) for d in table["distribution"]] == [r["distribution"] for r in rows]
        assert table["gold_prob"].tolist() == pytest.approx([r["gold_prob"] for r in rows], abs=0)
    assert jsonl_twins(files) == []  # a rerun of the analysis converts only what is new


def test_write_parquet_unions_the_columns_and_writes_atomically(tmp_path, monkeypatch):
    rows = [{"a": 1, "b": "x"}, {"a": 2.5, "c": [1.0, 2.0]}, {"a": None, "b": 3}]
    path = write_parquet(tmp_path / "t.parquet", rows)
    table = pd.read_parquet(path)
    assert list(table.columns) == ["a", "b", "c"]
    assert table["a"].tolist()[:2] == [1.0, 2.5] and pd.isna(table["a"][2])
    b = table["b"].tolist()  # a number and a text in one column: JSON text
    assert b[0] == '"x"' and pd.isna(b[1]) and b[2] == "3"
    assert [x is None or list(x) for x in table["c"]] == [True, [1.0, 2.0], True]

    import pyarrow.parquet as pq

    def broken(table, where):
        open(where, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_parquet(tmp_path / "u.parquet", rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]  # nothing half-written


def test_without_pyarrow_the_default_skips_with_a_note_and_true_is_refused_naming_the_extra(
    monkeypatch, capsys
):
    assert not parquet_enabled(False) and parquet_enabled(None) and parquet_enabled(True)
    real = extras.has
    monkeypatch.setattr(extras, "has", lambda *m: "pyarrow" not in m and real(*m))
    assert not parquet_enabled(None)
    assert 'pip install "iftscope[parquet]"' in capsys.readouterr().err
    with pytest.raises(ImportError, match=r"iftscope\[parquet\]"):
        parquet_enabled("on")
    on, _ = load_recipe(None, ["parquet=true"])
    found = [p for p in problems(on) if p.startswith("parquet")]
    assert len(found) == 1 and "pyarrow" in found[0] and "iftscope[parquet]" in found[0]
    for auto in (load_recipe(None, [])[0], load_recipe(None, ["parquet=false"])[0]):
        assert auto.parquet in (None, False) and not [p for p in problems(auto) if p.startswith("parquet")]
