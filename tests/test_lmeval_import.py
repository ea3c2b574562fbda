"""Importing probes scored elsewhere without lm-eval installed: the official code's output
(Ren et al.'s eval/my_domain_eval.py), and the error naming the extra when lm-eval is missing."""

from __future__ import annotations

import json
import math
import sys

import pytest

from iftscope.cli import main
from iftscope.probe.knowledge import ProbeConfig
from iftscope.probe.official import read_official
from iftscope.types import Question

PROBS = [[0.7, 0.1, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0.25, 0.25, 0.3, 0.2], [0.05, 0.05, 0.1, 0.8]]


def official_rows(answers=(0, 0, 2, 1)):
    """What the official code writes: the question's fields, correct, pred, probs, golden_prob, pred_prob."""
    rows = []
    for i, (probs, answer) in enumerate(zip(PROBS, answers, strict=True)):
        q = Question(str(100 + i), f"Question {i}?", ("w", "x", "y", "z"), answer, explanation="")
        pred = max(range(4), key=probs.__getitem__)
        rows.append({**q.to_json(), "correct": pred == answer, "pred": pred, "probs": probs,
                     "golden_prob": probs[answer], "pred_prob": probs[pred]})  # fmt: skip
    return rows


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_official_output_becomes_probe_records(tmp_path):
    path = write_rows(tmp_path / "engineering-logits-shot5-train-vicuna0.jsonl", official_rows())
    questions, records, cfg = read_official(path)
    assert [q.id for q in questions] == ["100", "101", "102", "103"]
    assert [r.domain for r in records] == ["engineering"] * 4  # the code's --task, from the file name
    assert [x for r in records for x in r.distribution] == pytest.approx([x for p in PROBS for x in p])
    assert [r.prediction for r in records] == [0, 1, 2, 3]
    assert [r.correct for r in records] == [True, False, True, False]
    # the paper's rule: correct and predicted probability > 0.5
    assert [r.known for r in records] == [True, False, False, False]
    assert [r.confidently_wrong(0.5) for r in records] == [False, True, False, True]
    assert all(math.isnan(r.option_mass) for r in records) and cfg.format == "paper-original"


def test_cli_import_paper_code_then_intervene(tmp_path):
    rows = official_rows()
    path = write_rows(tmp_path / "probe.jsonl", rows)
    data = write_rows(
        tmp_path / "questions.jsonl",
        [{k: r[k] for k in ("id", "question", "choices", "answer")} for r in rows],
    )
    assert main(["import", "paper-code", str(path), "--out", str(tmp_path / "probe")]) == 0
    summary = json.loads((tmp_path / "probe" / "summary.json").read_text())
    assert summary["n"] == 4 and summary["accuracy"] == 0.5 and summary["backend"] == "paper-code"
    out = tmp_path / "groups"
    assert (
        main(["intervene", "--probe", str(tmp_path / "probe"), "--data", str(data), "--out", str(out)]) == 0
    )
    groups = {g["name"]: g["items"] for g in json.loads((out / "groups.json").read_text())}
    assert [i["question_id"] for i in groups["H"]] == ["100"]  # the one known; I and S: as many
    (wrong,) = groups["I"]
    assert wrong["question_id"] in ("101", "103") and wrong["target"] == wrong["gold"] == 0
    assert groups["S"] == [{**wrong, "target": wrong["base_prediction"], "kind": "self"}]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"pred": 2}, r"probe.jsonl:2: pred: 2 is not the argmax"),
        ({"probs": [0.5, 0.5, 0.5, 0.5]}, r"probe.jsonl:2: probs: sum to 2"),
        ({"probs": [0.2, 0.8, 0.0]}, r"probe.jsonl:2: probs: expected 4 probabilities"),
        ({"probs": "B. x", "golden_prob": -1}, r"probe.jsonl:2: probs: generation-mode output"),
        ({"correct": True}, r"probe.jsonl:2: correct: True but pred 1 and answer 0"),
        ({"golden_prob": 0.9}, r"probe.jsonl:2: golden_prob: 0.9 but probs\[0\] is 0.2"),
    ],
)
def test_official_output_out_of_shape_is_refused_with_its_line(tmp_path, capsys, change, message):
    rows = official_rows()
    rows[1].update(change)
    path = write_rows(tmp_path / "probe.jsonl", rows)
    assert main(["import", "paper-code", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "iftscope import paper-code: error" in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_generative_rule_refused_for_official_output(tmp_path):
    path = write_rows(tmp_path / "probe.jsonl", official_rows())
    with pytest.raises(ValueError, match="did not save"):
        read_official(path, known_rule="generative")


def test_lm_eval_backend_without_lm_eval_names_the_extra(monkeypatch):
    from iftscope.study.config import StudyConfig
    from iftscope.study.validate import problems

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now fails, as when not installed
    found = problems(StudyConfig(probe=ProbeConfig(backend="lm-eval")))
    assert any("pip install 'iftscope[lm-eval]'" in p for p in found), found
    assert problems(StudyConfig()) == []  # native: lm-eval not needed
    found = problems(StudyConfig(probe=ProbeConfig(backend="vllm")))
    assert any("probe.backend: 'vllm' (allowed: native, lm-eval)" in p for p in found), found


def test_export_run_folder_sets_with_the_recipes_probe(tmp_path, capsys):
    """A run folder: its IFT questions and every test set as tasks, in the recipe's probe settings
    (or, with --tuned, zero-shot in the format tuned models are read in); flags override."""
    from iftscope.types import LETTERS

    run = tmp_path / "run"
    (run / "tests").mkdir(parents=True)
    qs = [Question(f"q{i}", f"Question {i}?", ("w", "x", "y", "z"), i % 4) for i in range(6)]
    ift = write_rows(tmp_path / "ift.jsonl", [q.to_json() for q in qs])
    write_rows(run / "tests" / "homo-set.jsonl", [q.to_json() for q in qs[:2]])
    (run / "recipe.yaml").write_text(
        f"name: t\ndata: {{model: some/model, ift: [{ift}], tests: {{homo-set: {ift}}}}}\n"
        "probe: {format: mmlu, shots: 2, permutations: 3, demos: first}\n"
        "render: {template: vicuna, show_options: true}\neval_format: trained\n"
    )
    assert main(["export", "lm-eval", str(run), "--out", str(tmp_path / "tasks")]) == 0
    info = json.loads((tmp_path / "tasks" / "iftscope-export.json").read_text())
    assert info["tasks"] == {"ift": "iftscope_ift", "homo-set": "iftscope_homo_set"}
    assert info["documents"] == {"ift": 18, "homo-set": 6} and info["format"] == "mmlu@1"
    assert "pretrained=some/model" in capsys.readouterr().out
    docs = [json.loads(x) for x in (tmp_path / "tasks" / "data" / "ift.jsonl").read_text().splitlines()]
    first = docs[0]
    assert first["choices"] == [" A", " B", " C", " D"] and first["prompt"].endswith("D. z\nAnswer:")
    assert first["prompt"].count("Answer:") == 3  # two demonstrations (the pool's first, not q0) and q0
    rotated = docs[1]  # q0, rotation 1: options x y z w, gold 'w' now last
    assert rotated["answer"] == 3 and "A. x\nB. y\nC. z\nD. w\nAnswer:" in rotated["prompt"]
    assert all(LETTERS[d["answer"]] for d in docs)
    yaml_text = (tmp_path / "tasks" / "iftscope_ift.yaml").read_text()
    assert 'target_delimiter: ""' in yaml_text and str(tmp_path / "tasks" / "data" / "ift.jsonl") in yaml_text
    assert main(["export", "lm-eval", str(run), "--tuned", "--out", str(tmp_path / "tuned")]) == 0
    tuned = json.loads((tmp_path / "tuned" / "iftscope-export.json").read_text())
    assert tuned["format"] == "sft-vicuna-options@1" and tuned["probe"]["shots"] == 0
    assert main(["export", "lm-eval", str(run), "--permutations", "1", "--out", str(tmp_path / "one")]) == 0
    assert json.loads((tmp_path / "one" / "iftscope-export.json").read_text())["documents"]["ift"] == 6
