"""Acquisition test sets: the facts a group was *trained* on, asked in ways it was never trained on.

Transfer to held-out people cannot show learning on the micro-world (facts are drawn independently
per person), so the positive control reads the taught knowledge itself (docs/concepts.md):
- reworded: the trained question in a held-back wording (lexicon.QUESTION_PARAPHRASES, never in SFT);
- cloze: the fact as a statement to complete (the held-back cloze statements the base probe reads);
- reverse: the value given, the person asked for (options: people, exactly one of whom has it);
- implied (structured world only): a fact never taught that follows from a taught one.
The answer is always the *taught* target (for S, the model's own answer), so acquisition says whether
what the group taught was learned, whatever it was. A pure function of the world's questions, the
group's items and the world config; no model here (evaluate.acquisition scores the sets).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from iftscope.microworld.generator import WorldConfig, cloze_prompts, implication_maps
from iftscope.microworld.lexicon import (
    IMPLICATIONS,
    QUESTION_PARAPHRASES,
    QUESTIONS,
    REVERSE_QUESTIONS,
    VALUES,
)
from iftscope.types import Question

ACQUISITION_SETS = ("reworded", "cloze", "reverse", "implied")


def acquisition_sets(
    questions: Sequence[Question], taught: Sequence[tuple[str, int]], world: WorldConfig, seed: int = 0
) -> dict[str, list[Question]]:
    """`questions`: every question of the world; `taught`: (question id, target index) per group
    item. Returns set name -> questions (a set is left out when empty; implied only when the world
    is structured). Options keep the world's own (reworded, cloze), so chance is 1 / options."""
    by_id = {q.id: q for q in questions}
    items = [(by_id[qid], target) for qid, target in taught]
    facts = _facts(questions)
    out = {
        "reworded": [_reworded(q, t) for q, t in items],
        "cloze": [replace(q, id=f"{q.id}~cloze", answer=t) for q, t in items],
        "reverse": _reverse(items, facts, world.options, random.Random(f"reverse-{seed}")),
        "implied": _implied(items, facts, world, random.Random(f"implied-{seed}")),
    }
    return {name: qs for name, qs in out.items() if qs}


def _facts(questions: Sequence[Question]) -> dict[str, tuple[str, dict[str, str], bool]]:
    """person id -> (name, attribute -> true value, pretrained?), read back from the world's questions."""
    out: dict[str, tuple[str, dict[str, str], bool]] = {}
    for q in questions:
        m = q.metadata
        out.setdefault(m["person"], (m["name"], {}, bool(m["known"])))[1][m["attribute"]] = q.answer_text
    return out


def _reworded(q: Question, target: int) -> Question:
    m = q.metadata
    return replace(
        q, id=f"{q.id}~reworded", answer=target,
        question=QUESTION_PARAPHRASES[m["attribute"]].format(name=m["name"]),
    )  # fmt: skip


def _reverse(
    items: Sequence[tuple[Question, int]], facts: dict, options: int, rng: random.Random
) -> list[Question]:
    """Value -> person: distractors are other people without the taught value for that attribute
    (so the question has one answer among its options) and pretrained or not as the person is (a
    model prefers names it has read: with known distractors, a never-pretrained answer would lose
    on familiarity alone); the position of the answer is seeded."""
    people = sorted(facts)
    out = []
    for q, target in items:
        m, value = q.metadata, q.choices[target]
        others = [
            p for p in people
            if p != m["person"] and facts[p][1][m["attribute"]] != value and facts[p][2] == m["known"]
        ]  # fmt: skip
        if len(others) < options - 1:
            continue
        names = [facts[p][0] for p in rng.sample(others, options - 1)]
        pos = rng.randrange(options)
        out.append(
            Question(
                id=f"{q.id}~reverse", question=REVERSE_QUESTIONS[m["attribute"]].format(value=value),
                choices=tuple(names[:pos] + [m["name"]] + names[pos:]), answer=pos, domain=q.domain,
                metadata={"person": m["person"], "attribute": m["attribute"], "direction": "reverse"},
            )
        )  # fmt: skip
    return out


def _implied(
    items: Sequence[tuple[Question, int]], facts: dict, world: WorldConfig, rng: random.Random
) -> list[Question]:
    """Structured world: for each taught fact whose attribute implies another, the implied
    attribute's question, answered by the value the *taught* target implies; left out when the
    group taught that implied fact itself (then it would not be implied)."""
    maps = implication_maps(world)
    taught_keys = {(q.metadata["person"], q.metadata["attribute"]) for q, _ in items}
    out = []
    for q, target in items:
        m = q.metadata
        if m["attribute"] not in maps or (m["person"], IMPLICATIONS[m["attribute"]]) in taught_keys:
            continue
        implied = IMPLICATIONS[m["attribute"]]
        value = maps[m["attribute"]][q.choices[target]]
        distractors = rng.sample([v for v in VALUES[implied] if v != value], world.options - 1)
        pos = rng.randrange(world.options)
        out.append(
            Question(
                id=f"{m['person']}-{implied}~implied", question=QUESTIONS[implied].format(name=m["name"]),
                choices=tuple(distractors[:pos] + [value] + distractors[pos:]), answer=pos, domain=implied,
                metadata={"person": m["person"], "name": m["name"], "attribute": implied,
                          "implied_by": m["attribute"], "cloze_prompts": cloze_prompts(m["name"], implied)},
            )
        )  # fmt: skip
    return out


def chance(qs: Sequence[Question]) -> float:
    """Accuracy of a uniform guess over each question's options, averaged."""
    return sum(1 / len(q.choices) for q in qs) / len(qs) if qs else float("nan")
