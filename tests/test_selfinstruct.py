"""The self-instruct group: built with no gold label, the size of the other groups, seeded, its
make-up measured against what the model knew."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from test_intervene import fake_probe

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.intervene.selfinstruct import makeup, self_generated
from iftscope.intervene.stage import run_intervene

GOLD_FIELDS = {
    "answer", "answer_letter", "answer_text", "explanation",  # Question
    "gold", "correct", "known", "gold_prob", "gold_abs_prob", "view_accuracy", "sampled_accuracy",
    "category", "confidently_wrong", "confidently_right",  # ProbeRecord
}  # fmt: skip


class NoGold:
    """Wraps a question or probe record; reading anything that carries the gold label fails."""

    def __init__(self, obj, reads: Counter):
        self._obj, self._reads = obj, reads

    def __getattr__(self, name):
        if name in GOLD_FIELDS:
            self._reads[name] += 1
            raise AssertionError(f"the self-instruct builder read {name!r}")
        return getattr(self._obj, name)


def test_builder_never_reads_a_gold_label(tiny_world):
    _, _, questions = tiny_world
    reads: Counter = Counter()
    records = fake_probe(questions)
    chosen = self_generated(
        [NoGold(q, reads) for q in questions], [NoGold(r, reads) for r in records], size=12, seed=0
    )
    assert not reads and len(chosen) == 12
    by_id = {r.question_id: r for r in records}
    for qid, target, own, confidence in chosen:  # greedy: the model's argmax, whatever gold is
        assert target == own == by_id[qid].prediction and confidence == by_id[qid].confidence
    sampled = self_generated(
        [NoGold(q, reads) for q in questions], [NoGold(r, reads) for r in records], 12, 0, "sampled"
    )
    assert not reads and len(sampled) == 12


def test_seeded_and_drawn_from_known_and_unknown_people(tiny_world):
    _, _, questions = tiny_world
    records = fake_probe(questions)
    a, b = self_generated(questions, records, 20, seed=1), self_generated(questions, records, 20, seed=1)
    assert a == b and a != self_generated(questions, records, 20, seed=2)
    s1 = self_generated(questions, records, 20, 1, "sampled")
    assert s1 == self_generated(questions, records, 20, 1, "sampled")
    by_id = {q.id: q for q in questions}
    people = {by_id[qid].metadata["known"] for qid, *_ in a}
    assert people == {True, False}  # about people pretrained and people not
    assert all(by_id[qid].metadata["split"].endswith("_ift") for qid, *_ in a)
    with pytest.raises(ValueError, match="cannot build self-instruct"):
        self_generated(questions, records, 10_000, 0)


def test_group_has_the_size_of_the_others_and_reports_its_makeup(tiny_world, tmp_path):
    _, _, questions = tiny_world
    records = fake_probe(questions)
    cfg = InterveneConfig(mixtures=(), generated=("self-instruct",), seed=3)
    summary = run_intervene(questions, records, tmp_path / "g", cfg, RenderConfig(styles=("answer",)))
    sizes = {name: g["size"] for name, g in summary["groups"].items()}
    assert "self-instruct" in sizes and len(set(sizes.values())) == 1
    assert summary["groups"]["self-instruct"]["kinds"] == {"self-generated": sizes["H"]}
    groups = {g["name"]: g for g in json.loads((tmp_path / "g" / "groups.json").read_text())}
    items = groups["self-instruct"]["items"]
    by_id = {q.id: q for q in questions}
    assert all(it["gold"] == by_id[it["question_id"]].answer for it in items)  # attached afterwards
    probe_known = {r.question_id: r.known for r in records}
    truth = {q.id: q.metadata["known"] for q in questions}
    m = makeup(items, probe_known, truth)
    n_known = sum(truth[it["question_id"]] for it in items)
    assert m["n"] == len(items) and m["truly_known"] == n_known / len(items)
    assert m["target_is_gold"] == sum(it["target"] == it["gold"] for it in items) / len(items)
    assert m["target_is_gold_known"] == 1.0  # fake_probe: known people answered right
    with pytest.raises(ValueError, match="unknown group"):
        run_intervene(questions, records, tmp_path / "h", InterveneConfig(generated=("magic",)),
                      RenderConfig(styles=("answer",)))  # fmt: skip
