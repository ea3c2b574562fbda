"""Curation: drop, relabel or keep the items the model confidently contradicts."""

import json

import pytest
from test_intervene import fake_probe

from iftscope.cli import main
from iftscope.intervene.curate import curate, report, report_markdown


def test_policies_by_hand(tiny_world):
    _, _, questions = tiny_world
    records = fake_probe(questions)
    contradicted = {r.question_id for r in records if not r.correct and r.confidence > 0.5}
    assert contradicted
    kept, decisions = curate(questions, records, "drop")
    assert {q.id for q in kept} == {q.id for q in questions} - contradicted
    relabelled, _ = curate(questions, records, "relabel")
    by_rec = {r.question_id: r for r in records}
    for q in relabelled:
        if q.id in contradicted:
            assert q.answer == by_rec[q.id].prediction and q.metadata["iftscope_original_answer"] in "ABCD"
            assert q.explanation is None  # the old explanation supported the old answer
    same, _ = curate(questions, records, "keep")
    assert [q.answer for q in same] == [q.answer for q in questions]
    assert {q.metadata["iftscope_verdict"] for q in same} == {"known", "contradicts", "unsure"}
    rep = report(decisions, questions, "drop")
    assert rep["actions"]["dropped"] == len(contradicted) == len(rep["changed"])
    assert "adds no knowledge" in report_markdown(rep)
    with pytest.raises(ValueError, match="unknown policy"):
        curate(questions, records, "fix")
    with pytest.raises(ValueError, match="have no probe record"):
        curate(questions, records[1:], "drop")


def test_curate_command(tmp_path, tiny_hf_model_dir, capsys):
    data = tmp_path / "ift.jsonl"
    rows = [
        {"id": str(i), "question": f"Which is {i}?", "choices": ["a", "b", "c", "d"], "answer": i % 4}
        for i in range(12)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "curated.jsonl"
    args = [
        "curate",
        "--model",
        str(tiny_hf_model_dir),
        "--data",
        str(data),
        "--shots",
        "2",
        "--out",
        str(out),
    ]
    assert main([*args, "--policy", "keep", "--quiet"]) == 0
    assert "curated 12 items (keep)" in capsys.readouterr().out
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(kept) == 12 and all("iftscope_verdict" in r["metadata"] for r in kept)
    assert (tmp_path / "curated.jsonl.report.md").exists() and (
        tmp_path / "curated.jsonl.probe" / "records.jsonl"
    ).exists()
