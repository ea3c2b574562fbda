"""The positive control: acquisition sets, the I-augmented group, the structured world (no model)."""

from collections import Counter
from dataclasses import asdict

import pytest
from conftest import make_record, peaked

from iftscope.analyse.acquisition import acquisition_table, acquisition_verdict
from iftscope.intervene.groups import InterveneConfig, build_groups
from iftscope.intervene.render import RenderConfig, render_group
from iftscope.microworld.acquisition import acquisition_sets, chance
from iftscope.microworld.generator import (
    WORD_PATTERN,
    WorldConfig,
    implication_maps,
    make_people,
    make_questions,
    vocabulary,
)
from iftscope.microworld.lexicon import (
    AUGMENT_QUESTIONS,
    IMPLICATIONS,
    QUESTION_PARAPHRASES,
    QUESTIONS,
    REVERSE_QUESTIONS,
    VALUES,
)
from iftscope.microworld.stage import WorldStageConfig


def fake_probe(questions):
    """Known people: known. Unknown people: alternately confidently wrong and unsure."""
    out = []
    for i, q in enumerate(questions):
        if q.metadata["known"]:
            out.append(make_record(q.id, q.answer, peaked(q.answer, 0.9), domain=q.domain, known=True))
        elif i % 2:
            out.append(make_record(q.id, q.answer, peaked((q.answer + 1) % 4, 0.8), domain=q.domain))
        else:
            out.append(make_record(q.id, q.answer, peaked(q.answer, 0.3), domain=q.domain))
    return out


@pytest.fixture(scope="module")
def structured():
    cfg = WorldConfig(seed=3, people=20, unknown=10, structured=True, held_out_attribute=None)
    people = make_people(cfg)
    return cfg, people, make_questions(people, cfg)


def groups_of(questions, augment=4, **kw):
    cfg = InterveneConfig(mixtures=(), augment=augment, **kw)
    return {g.name: g for g in build_groups(questions, fake_probe(questions), cfg)}


def test_new_wordings_use_only_the_vocabulary_and_stay_apart():
    vocab = set(vocabulary())
    texts = [t for ts in AUGMENT_QUESTIONS.values() for t in ts] + list(REVERSE_QUESTIONS.values())
    for t in texts:
        words = WORD_PATTERN.findall(t.replace("{name}", " ").replace("{value}", " "))
        assert set(words) <= vocab, (t, set(words) - vocab)
    for attr, ts in AUGMENT_QUESTIONS.items():  # training wordings never the test's held-back one
        assert QUESTIONS[attr] not in ts and QUESTION_PARAPHRASES[attr] not in ts
        assert len(set(ts)) == len(ts)


def test_structured_world_implies_its_facts_and_keeps_the_rest(structured):
    cfg, people, _ = structured
    maps = implication_maps(cfg)
    assert set(maps) == set(IMPLICATIONS)
    for source, m in maps.items():  # one-to-one onto the implied attribute's values
        assert sorted(m) == sorted(VALUES[source]) and sorted(m.values()) == sorted(
            VALUES[IMPLICATIONS[source]]
        )
    for p in people:
        for source, implied in IMPLICATIONS.items():
            assert p.facts[implied] == maps[source][p.facts[source]]
    plain = make_people(WorldConfig(seed=3, people=20, unknown=10, held_out_attribute=None))
    free = {"birth_year", "employer", "university"}  # drawn as before: same rng stream
    assert [(p.name, {a: p.facts[a] for a in free}) for p in plain] == [
        (p.name, {a: p.facts[a] for a in free}) for p in people
    ]


def test_option_off_keeps_every_world_fingerprint():
    assert "structured" not in WorldConfig().to_json()
    assert WorldConfig(structured=True).to_json()["structured"] is True
    assert WorldStageConfig().fingerprint != WorldStageConfig(world=WorldConfig(structured=True)).fingerprint
    assert not implication_maps(WorldConfig())


def test_augmented_group_teaches_each_fact_in_several_wordings(structured):
    _, _, questions = structured
    groups = groups_of(questions, augment=4)
    aug, i = groups["I-augmented"], groups["I"]
    assert aug.items == i.items and aug.rewordings == 4
    by_id = {q.id: q for q in questions}
    for style in ("answer", "explained"):
        ex = render_group(aug, by_id, RenderConfig(styles=(style,)))
        plain = render_group(i, by_id, RenderConfig(styles=(style,)))
        assert len(ex) == 4 * len(plain)
        per_fact = Counter(e.question_id for e in ex)
        assert set(per_fact.values()) == {4} and set(per_fact) == {e.question_id for e in plain}
        for qid in per_fact:  # four different prompts, one target
            mine = [e for e in ex if e.question_id == qid]
            assert len({e.prompt for e in mine}) == 4 and len({e.target_text for e in mine}) == 1
            if style == "explained":
                assert len({e.response for e in mine}) == 4
        assert len({e.id for e in ex}) == len(ex)
    assert "I-augmented" not in groups_of(questions, augment=0)
    with pytest.raises(ValueError, match="at most 4 wordings"):
        groups_of(questions, augment=5)


def test_same_step_budget_counts_facts_not_examples(structured, tmp_path):
    """Epochs resolve to steps over the facts: I-augmented's 4x examples get I's steps."""
    import json

    from iftscope.stages import train as train_stage_module
    from iftscope.train.config import SFTConfig, resolve

    _, _, questions = structured
    groups = groups_of(questions)
    by_id = {q.id: q for q in questions}
    seen = {}
    for name in ("I", "I-augmented"):
        ex = render_group(groups[name], by_id, RenderConfig())
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in ex))
        captured = {}

        def fake_resolve(cfg, n, captured=captured):
            captured["n"] = n
            return resolve(cfg, n)

        orig = train_stage_module.resolve
        train_stage_module.resolve = fake_resolve
        try:
            with pytest.raises(Exception):  # noqa: B017 - stops at loading the (absent) model, after resolving
                train_stage_module.train_stage(None, path, "answer", SFTConfig(epochs=3), tmp_path / name)
        finally:
            train_stage_module.resolve = orig
        seen[name] = resolve(SFTConfig(epochs=3, batch_size=8), captured["n"]).steps
    assert seen["I"] == seen["I-augmented"]


def test_acquisition_sets_ask_the_taught_facts_in_words_never_trained(structured):
    cfg, people, questions = structured
    groups = groups_of(questions)
    by_id = {q.id: q for q in questions}
    for name in ("I", "S", "counterfactual", "I-augmented"):
        g = groups[name]
        taught = [(it.question_id, it.target) for it in g.items]
        sets = acquisition_sets(questions, taught, cfg)
        assert set(sets) == {"reworded", "cloze", "reverse", "implied"}
        prompts = " ".join(
            e.prompt + e.response
            for e in render_group(g, by_id, RenderConfig(styles=("answer", "explained")))
        )
        for q, (qid, target) in zip(sets["reworded"], taught, strict=True):
            assert q.id == f"{qid}~reworded" and q.answer_text == by_id[qid].choices[target]
            assert q.question not in prompts  # the held-back wording is never in SFT
        for q, (qid, target) in zip(sets["cloze"], taught, strict=True):
            assert q.id == f"{qid}~cloze" and q.answer == target
            assert not any(c in prompts for c in q.metadata["cloze_prompts"])
        facts = {p.name: p.facts for p in people}
        known = {p.name: p.known for p in people}
        for q in sets["reverse"]:
            qid = q.id.removesuffix("~reverse")
            attr, value = by_id[qid].metadata["attribute"], dict(taught)[qid]
            value = by_id[qid].choices[value]
            assert q.question == REVERSE_QUESTIONS[attr].format(value=value)
            assert q.answer_text == by_id[qid].metadata["name"]
            assert len(set(q.choices)) == cfg.options
            assert all(facts[n][attr] != value for n in q.choices if n != q.answer_text)
            assert {known[n] for n in q.choices} == {by_id[qid].metadata["known"]}  # familiarity matched
        assert chance(sets["cloze"]) == pytest.approx(1 / cfg.options)


def test_implied_facts_follow_from_the_taught_target(structured):
    cfg, people, questions = structured
    maps = implication_maps(cfg)
    by_id = {q.id: q for q in questions}
    g = groups_of(questions)["counterfactual"]  # false values imply false implied values
    taught = {it.question_id: it.target for it in g.items}
    keys = {(by_id[q].metadata["person"], by_id[q].metadata["attribute"]) for q in taught}
    implied = acquisition_sets(questions, list(taught.items()), cfg)["implied"]
    meta = {q: by_id[q].metadata for q in taught}
    expected = [
        q
        for q in taught
        if meta[q]["attribute"] in maps
        and (meta[q]["person"], IMPLICATIONS[meta[q]["attribute"]]) not in keys
    ]
    assert len(implied) == len(expected) > 0
    for q, qid in zip(implied, expected, strict=True):
        source = by_id[qid]
        assert q.metadata["implied_by"] == source.metadata["attribute"]
        assert q.answer_text == maps[source.metadata["attribute"]][source.choices[taught[qid]]]
        assert (
            q.metadata["cloze_prompts"]
            and q.metadata["attribute"] == IMPLICATIONS[source.metadata["attribute"]]
        )
    plain = WorldConfig(seed=3, people=20, unknown=10)
    assert "implied" not in acquisition_sets(questions, list(taught.items()), plain)


def _run(group, seed, acc, n=100, chance_=0.25, base=0.0):
    m = {"reworded": {"n": n, "accuracy": acc, "chance": chance_, "base_agreement": base}}
    return {"group": group, "style": "answer", "seed": seed, "metrics": {"_acquisition": m}}


def test_acquisition_table_and_verdict_tell_learning_from_chance_and_from_the_base():
    runs = [_run("I", s, a) for s, a in enumerate((0.24, 0.27, 0.22))]
    runs += [_run("I-augmented", s, a) for s, a in enumerate((0.8, 0.85, 0.9))]
    runs += [_run("S", s, 0.99, base=1.0) for s in range(3)]  # its own answers: nothing learned
    runs += [_run("H", s, 0.9, base=0.8) for s in range(3)]  # above what the base said: learned
    table = acquisition_table(runs)
    aug, i = table["I-augmented/answer"]["reworded"], table["I/answer"]["reworded"]
    assert aug["learned"] and not i["learned"] and i["reference"] == 0.25
    assert aug["n"] == 300 and aug["accuracy"]["mean"] == pytest.approx(0.85) and aug["accuracy"]["ci"]
    s_cell, h_cell = table["S/answer"]["reworded"], table["H/answer"]["reworded"]
    assert s_cell["reference"] == 1.0 and not s_cell["learned"] and h_cell["learned"]
    said = acquisition_verdict(table, "answer")
    assert "learned by H 0.900 vs 0.800" in said and "I-augmented 0.850 vs 0.250" in said
    assert "not above their reference: I 0.243" in said and "S 0.990 vs 1.000" in said
    assert "learned by no group" in acquisition_verdict(acquisition_table([_run("I", 0, 0.2)]), "answer")
    assert acquisition_verdict({}, "answer") == ""
    assert asdict(InterveneConfig())["augment"] == 0  # off unless a recipe asks for it


def test_a_world_without_a_held_out_attribute_has_no_such_test_set(structured):
    from iftscope.study.inputs import micro_world_sets

    _, _, questions = structured  # held_out_attribute: null
    sets = micro_world_sets(questions)
    assert set(sets) == {"known-heldout", "unknown"} and all(sets.values())
    plain = WorldConfig(seed=3, people=20, unknown=10)
    assert "heldout-attribute" in micro_world_sets(make_questions(make_people(plain), plain))
