"""`iftscope intervene` then `iftscope train` end to end on a tiny world (probe records faked)."""

import json

from conftest import tiny_stage_config
from test_intervene import fake_probe

from iftscope.cli import main
from iftscope.data import load_questions
from iftscope.microworld.stage import build_world


def test_intervene_then_train(tmp_path, capsys):
    world = tmp_path / "world"
    build_world(world, tiny_stage_config(), progress=False)
    questions = load_questions(world / "questions.jsonl")
    probe = tmp_path / "probe"
    probe.mkdir()
    rows = [r.to_json() for r in fake_probe(questions)]
    (probe / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (probe / "summary.json").write_text(json.dumps({"data": [str(world / "questions.jsonl")]}))
    groups = tmp_path / "groups"
    assert (
        main(["intervene", "--probe", str(probe), "--out", str(groups), "--styles", "answer,explained"]) == 0
    )
    out = capsys.readouterr().out
    assert "S: " in out and "counterfactual" in out
    summary = json.loads((groups / "summary.json").read_text())
    assert set(summary["groups"]) == {"H", "I", "S", "mix-0.5", "I-context", "unknown-gold", "counterfactual"}
    lines = (groups / "examples" / "H.jsonl").read_text().splitlines()
    assert len(lines) == 2 * summary["groups"]["H"]["size"]

    test = tmp_path / "test.jsonl"
    held_out = [q for q in questions if q.metadata["split"] == "known_test"][:10]
    test.write_text("".join(json.dumps(q.to_json()) + "\n" for q in held_out))
    args = ["train", "--examples", str(groups / "examples" / "H.jsonl"), "--base", str(world / "model")]
    args += ["--out", str(tmp_path / "H"), "--steps", "4", "--batch-size", "4", "--eval-data", str(test)]
    assert main([*args, "--eval-every", "2", "--quiet"]) == 0
    assert "held-out QA accuracy" in capsys.readouterr().out
    log = json.loads((tmp_path / "H" / "train.json").read_text())["log"]
    assert [("qa_accuracy" in r) for r in log] == [False, True, False, True]
    assert (
        main(["train", "--examples", str(test), "--base", str(world / "model"), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "not an SFT example" in capsys.readouterr().err
