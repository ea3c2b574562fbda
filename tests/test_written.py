"""Self-instruct on real data: the questions the base model writes, the strict parser that keeps
or rejects them (counted by reason), filling with retries, seeding, and no gold label read."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from conftest import make_record
from test_selfinstruct import NoGold

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.intervene.selfinstruct import makeup, questions_source, self_instruct_group
from iftscope.intervene.stage import group_questions, run_intervene
from iftscope.intervene.written import REASONS, Author, parse_item, write_questions, writing_prompt
from iftscope.types import Question

GOOD = "Which metal melts first?\nA. tin\nB. iron\nC. copper\nD. tungsten\n"


def pool(n: int = 12) -> list[Question]:
    """Real-data-style questions (no micro-world `split`): four options, a gold answer each."""
    return [
        Question(f"p{i}", f"Pool question number {i}?", (f"a{i}", f"b{i}", f"c{i}", f"d{i}"), i % 4,
                 domain="engineering")
        for i in range(n)
    ]  # fmt: skip


# -- the parser --------------------------------------------------------------------------------


def test_parser_takes_one_question_and_exactly_the_pools_options():
    assert parse_item(GOOD + "\nWhat next?\nA.", 4, ended=False) == (
        "Which metal melts first?", ("tin", "iron", "copper", "tungsten"),
    )  # fmt: skip
    assert parse_item("\n" + GOOD, 4, ended=True)[1][3] == "tungsten"  # EOS ends the item
    assert parse_item(GOOD, 4, ended=False) == "unparseable"  # cut off by the token limit
    assert parse_item(GOOD.replace("D. tungsten\n", ""), 4, ended=True) == "unparseable"  # 3 options
    assert parse_item(GOOD + "E. lead\n", 4, ended=True) == "unparseable"  # 5 options
    assert parse_item(GOOD.replace("B. iron", "C. iron"), 4, ended=True) == "unparseable"  # letters
    assert parse_item(GOOD.split("\n", 1)[1], 4, ended=True) == "unparseable"  # no question line
    assert parse_item("Why?\nIt depends.\nA. x\nB. y\nC. z", 4, ended=True) == "unparseable"
    assert parse_item("", 4, ended=True) == "unparseable"
    assert parse_item(GOOD.replace("copper", ""), 4, ended=True) == "empty_option"
    assert parse_item(GOOD.replace("copper", "Tin."), 4, ended=True) == "duplicate_options"
    assert parse_item("Q?\nA) x\nB) y\n\n", 2, ended=False) == ("Q?", ("x", "y"))


def test_prompt_lists_demonstrations_without_their_answers():
    demos = [NoGold(q, Counter()) for q in pool(3)]  # reading an answer would fail
    text = writing_prompt(demos)
    assert text.startswith("The following are multiple choice questions about engineering.\n\n")
    assert "Pool question number 1?\nA. a1\nB. b1\nC. c1\nD. d1\n\n" in text and text.endswith("\n\n")
    assert "Answer" not in text


# -- filling, retries, seeding, with a scripted author -----------------------------------------


class Scripted:
    """A fake model: per prompt a seeded choice among a well-formed new item, a malformed one, a
    copy of its first demonstration, a copy of a test question and a repeat of an earlier item."""

    def __init__(self, weights=(6, 2, 1, 1, 1)):
        self.weights, self.calls = weights, []

    def write(self, prompts, seed):
        self.calls.append((len(prompts), seed))
        out = []
        for p in prompts:
            rng = random.Random(f"{seed}-{p}")
            kind = rng.choices(range(5), weights=self.weights)[0]
            first = p.split("\n\n")[1].split("\n")[0]
            question = [f"New question {rng.randrange(10**6)}?", "", first,
                        "Held out test question?", "New question 7?"][kind]  # fmt: skip
            out.append((question + "\nA. w\nB. x\nC. y\nD. z\n\nMore", False))
        return out

    @staticmethod
    def answer(questions):
        return [(0.1, 0.6, 0.2, 0.1) if i % 2 else (0.7, 0.1, 0.1, 0.1) for i, _ in enumerate(questions)]

    def author(self) -> Author:
        return Author(self.write, self.answer, ("Held out test question?",))


def test_filling_retries_counts_every_rejection_and_is_seeded():
    qs = pool()
    fake = Scripted()
    written, stats = write_questions(qs, fake.author(), size=20, seed=1, shots=3, attempts=5)
    assert len(written) == stats["accepted"] == 20 and len({q.question for q in written}) == 20
    assert stats["attempts"] == 20 + sum(stats["rejected"].values()) and set(stats["rejected"]) == set(
        REASONS
    )
    assert stats["rounds"] > 1 and len(fake.calls) == stats["rounds"]  # rejected items were rewritten
    rejected = stats["rejected"]
    assert rejected["unparseable"] and rejected["copies_demonstration"] and rejected["copies_pool_or_test"]
    assert all(q.metadata["written"] and len(q.metadata["demonstrations"]) == 3 for q in written)
    again, stats2 = write_questions(qs, Scripted().author(), size=20, seed=1, shots=3, attempts=5)
    assert [q.question for q in again] == [q.question for q in written] and stats2 == stats
    other, _ = write_questions(qs, Scripted().author(), size=20, seed=2, shots=3, attempts=5)
    assert [q.question for q in other] != [q.question for q in written]


def test_a_group_that_cannot_be_filled_is_an_error_with_the_counts():
    with pytest.raises(ValueError, match=r"wrote \d+ usable questions of the 20 needed in 40 attempts"):
        write_questions(pool(), Scripted((1, 8, 1, 1, 1)).author(), size=20, seed=0, shots=3, attempts=2)
    with pytest.raises(ValueError, match="generated_demos"):
        write_questions(pool(3), Scripted().author(), size=2, seed=0, shots=5, attempts=2)


def test_group_targets_are_the_models_own_answers_and_no_gold_is_read():
    reads: Counter = Counter()
    qs = [NoGold(q, reads) for q in pool()]
    cfg = InterveneConfig(generated=("self-instruct",), seed=4, generated_demos=3)
    assert questions_source(cfg, qs) == "written"  # real data: auto means written
    made = self_instruct_group(qs, [], 10, cfg, Scripted().author())
    assert not reads
    items = made.group.items
    assert [it.target for it in items] == [1 if i % 2 else 0 for i in range(10)]  # the argmax
    assert all(it.gold is None and it.kind == "self-written" for it in items)
    assert [q.answer for q in made.questions] == [it.target for it in items]  # its answer, stored
    sampled = InterveneConfig(
        generated=("self-instruct",), seed=4, generated_demos=3, generated_answers="sampled"
    )
    a = self_instruct_group(qs, [], 10, sampled, Scripted().author()).group.items
    assert a == self_instruct_group(qs, [], 10, sampled, Scripted().author()).group.items and not reads
    with pytest.raises(ValueError, match="needs the base model"):
        self_instruct_group(qs, [], 10, cfg, None)


def test_intervene_writes_the_questions_and_the_statistics(tmp_path):
    qs = pool(40)
    records = [make_record(q.id, q.answer, (0.7, 0.1, 0.1, 0.1) if i % 2 else (0.1, 0.1, 0.7, 0.1))
               for i, q in enumerate(qs)]  # fmt: skip
    cfg = InterveneConfig(
        mixtures=(), generated=("self-instruct",), seed=0, generated_demos=3, confidence=0.5
    )
    summary = run_intervene(qs, records, tmp_path / "g", cfg, RenderConfig(styles=("answer",)),
                            author=Scripted().author())  # fmt: skip
    sizes = {name: g["size"] for name, g in summary["groups"].items()}
    assert len(set(sizes.values())) == 1, sizes  # the size of the others: equal budgets
    writing = summary["groups"]["self-instruct"]["writing"]
    assert writing["accepted"] == sizes["H"] and writing["attempts"] >= sizes["H"]
    by_id = group_questions(qs, tmp_path / "g")
    groups = {g["name"]: g for g in json.loads((tmp_path / "g" / "groups.json").read_text())}
    items = groups["self-instruct"]["items"]
    assert all(by_id[it["question_id"]].metadata["written"] for it in items)
    examples = (tmp_path / "g" / "examples" / "self-instruct.jsonl").read_text().splitlines()
    assert len(examples) == len(items) and "New question" in examples[0]
    made = makeup(items, {}, None, writing)
    assert made["written"] and made["mean_confidence"] == pytest.approx(0.65)
    assert made["accepted_share"] == writing["accepted"] / writing["attempts"]
    assert (
        questions_source(InterveneConfig(), [Question("m", "q", ("a", "b"), 0, metadata={"split": "x"})])
        == "pool"
    )


def test_recipe_check_names_bad_written_settings():
    from iftscope.study.recipe import load_recipe
    from iftscope.study.validate import problems

    on = ["conditions=[self-instruct]"]
    cfg, _ = load_recipe(
        None, [*on, "intervene.generated_questions=written", "intervene.generated_attempts=0"]
    )
    found = "\n".join(problems(cfg))
    assert "intervene.generated_questions: written needs real data" in found
    assert "intervene.generated_attempts: 0 (must be at least 1)" in found
    cfg, _ = load_recipe(
        None, [*on, "intervene.generated_questions=magic", "intervene.generated_temperature=0"]
    )
    found = "\n".join(problems(cfg))
    assert "intervene.generated_questions: 'magic' (allowed: auto, written, pool)" in found
    assert "intervene.generated_temperature: 0" in found
    cfg, _ = load_recipe(None, [*on, "intervene.generated_questions=pool"])
    assert problems(cfg) == []


def test_items_have_the_pools_most_common_number_of_options():
    qs = pool(6) + [Question("three", "Three options?", ("a", "b", "c"), 0, domain="engineering")]
    fake = Scripted((1, 0, 0, 0, 0))
    written, _ = write_questions(qs, fake.author(), size=5, seed=0, shots=6, attempts=2)
    assert all(len(q.choices) == 4 for q in written)  # the 3-option question is never shown
    with pytest.raises(ValueError, match="generated_demos"):  # 6 usable demonstrations, not 7
        write_questions(qs, fake.author(), size=5, seed=0, shots=7, attempts=2)
