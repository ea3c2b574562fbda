"""Self-instruct's written questions end to end on a tiny Llama with a real production tokenizer
(Llama-2's SentencePiece vocabulary, from the mistral-common wheel): the model writes, the parser
keeps or rejects, the model answers as the probe reads, the intervene stage writes the group; and
the builder never reads a gold label.

A random model cannot write a question, so the fixture (realmodels.tiny_writer) first teaches the
tiny model the format (100 small steps on items like the pool's, about 15 s on 2 busy cores); which
questions it then writes, and how many are rejected, is up to its sampling.
"""

from __future__ import annotations

import json
from collections import Counter

from conftest import make_record
from test_selfinstruct import NoGold

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.probe.knowledge import ProbeConfig


def test_the_model_writes_answers_and_the_stage_stores_the_group(real_writer, tmp_path):
    from realmodels import item

    from iftscope.intervene.author import model_author
    from iftscope.intervene.selfinstruct import self_instruct_group
    from iftscope.stages.intervene import intervene_stage
    from iftscope.stages.model import ModelSpec

    writer = real_writer()
    questions = [item(n) for n in range(30)]
    records = [make_record(q.id, q.answer, (0.7, 0.1, 0.1, 0.1)) for q in questions]  # H: answer 0, I: rest
    tests = [item(500)]
    cfg = InterveneConfig(
        mixtures=(), size=4, generated=("self-instruct",), seed=1, generated_demos=1, generated_attempts=8,
        generated_tokens=40, generated_temperature=0.7,
    )  # fmt: skip
    probe = ProbeConfig(format="paper", shots=0)
    out = tmp_path / "groups"
    summary = intervene_stage(
        questions, records, cfg, RenderConfig(styles=("answer",)), out, base=ModelSpec(str(writer)),
        probe=probe, pool=questions, tests=tests,
    )  # fmt: skip
    sizes = {name: g["size"] for name, g in summary["groups"].items()}
    assert sizes == {"H": 4, "I": 4, "S": 4, "self-instruct": 4}
    writing = summary["groups"]["self-instruct"]["writing"]
    assert writing["accepted"] == 4 and writing["attempts"] == 4 + sum(writing["rejected"].values())
    written = [json.loads(line) for line in (out / "written.jsonl").read_text().splitlines()]
    pool_texts = {q.question for q in [*questions, *tests]}
    assert len(written) == 4 and not {w["question"] for w in written} & pool_texts  # no leakage
    assert all(len(w["choices"]) == 4 and w["metadata"]["written"] for w in written)
    items = next(g for g in json.loads((out / "groups.json").read_text()) if g["name"] == "self-instruct")
    items = items["items"]
    assert [it["question_id"] for it in items] == [w["id"] for w in written]
    assert all(it["gold"] is None and it["target"] == it["base_prediction"] for it in items)  # greedy
    assert [w["answer"] for w in written] == [it["target"] for it in items]

    # the same group from questions, pool and tests that fail when their gold label is read
    from iftscope.models.load import load_model

    reads: Counter = Counter()
    model, tok = load_model(str(writer))
    hidden = [NoGold(q, reads) for q in questions]
    author = model_author(model, tok, probe, hidden, [q.question for q in tests], max_new_tokens=40,
                          temperature=0.7)  # fmt: skip
    made = self_instruct_group(hidden, [NoGold(r, reads) for r in records], 4, cfg, author)
    assert not reads
    assert [it.to_json() for it in made.group.items] == items  # seeded: the stage's group exactly


def test_intervene_command_writes_with_the_probes_settings(real_writer, tmp_path, capsys):
    from realmodels import item

    from iftscope.cli import main
    from iftscope.data import load_questions

    data, tests = tmp_path / "pool.jsonl", tmp_path / "tests.jsonl"
    data.write_text("".join(json.dumps(item(n).to_json()) + "\n" for n in range(30)))
    tests.write_text(json.dumps(item(500).to_json()) + "\n")
    probe = tmp_path / "probe"
    probe.mkdir()
    rows = [make_record(f"x{n}", n % 4, (0.7, 0.1, 0.1, 0.1)).to_json() for n in range(30)]
    (probe / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"format": "paper", "shots": 0, "retired_key": 1}  # an unknown key is ignored
    summary = {"data": [str(data)], "model": str(real_writer()), "config": config}
    (probe / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "groups"
    args = ["intervene", "--probe", str(probe), "--out", str(out), "--generated", "self-instruct"]
    args += ["--generated-demos", "1", "--generated-tokens", "40", "--generated-temperature", "0.7"]
    args += ["--generated-attempts", "8", "--size", "3", "--styles", "answer", "--tests", str(tests)]
    assert main(args) == 0
    assert "written: 3 kept of" in capsys.readouterr().out
    written = load_questions(out / "written.jsonl")
    assert len(written) == 3 and "Which colour is object 500?" not in {q.question for q in written}
