"""The micro-world: fictional people whose facts the base model was, or was never, shown.

Generation is a pure function of `WorldConfig`: the same config gives the same people, the same
questions and byte-identical files. Biographies are rendered afresh each time they are sampled
(random paraphrase per fact, shuffled sentence order, full name in every sentence): the knowledge
augmentation that lets QA fine-tuning generalise across people (Allen-Zhu & Li, 2023).
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from iftscope.microworld.lexicon import (
    ASIDES,
    FIRST_NAMES,
    FORMAT_WORDS,
    HELD_OUT_TEMPLATES,
    IMPLICATIONS,
    LAST_NAMES,
    OPENERS,
    QUESTIONS,
    TEMPLATES,
    VALUES,
)
from iftscope.types import Question

ATTRIBUTES = tuple(VALUES)
# The split rule of the `Whitespace` pre-tokenizer that the word-level tokenizer uses.
WORD_PATTERN = re.compile(r"\w+|[^\w\s]+")
SPLITS = ("known_ift", "known_test", "unknown_ift", "unknown_test")


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0  # seeds every random choice of the world
    people: int = 500  # "known": their biographies are pretrained
    unknown: int = 250  # never shown to the base model
    options: int = 4  # options per question
    held_out_attribute: str | None = "employer"  # kept out of all IFT: an out-of-distribution test
    # some attributes follow from others (lexicon.IMPLICATIONS: employer -> field, university ->
    # birth_city), so facts taught in IFT imply untaught ones (the "implied" acquisition test)
    structured: bool = False

    def __post_init__(self) -> None:
        capacity = len(FIRST_NAMES) * len(LAST_NAMES)
        if self.people < 2 or self.unknown < 2:
            raise ValueError("the world needs at least 2 known and 2 unknown people")
        if self.people + self.unknown > capacity:
            raise ValueError(
                f"at most {capacity} people fit the name lists, asked for {self.people + self.unknown}"
            )
        if not 2 <= self.options <= min(len(v) for v in VALUES.values()):
            raise ValueError(f"options must be between 2 and {min(len(v) for v in VALUES.values())}")
        if self.held_out_attribute not in (None, *ATTRIBUTES):
            raise ValueError(
                f"held_out_attribute must be one of {ATTRIBUTES} or null, got {self.held_out_attribute!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """The config; `structured` only when on, so that every world built before the option
        existed keeps its fingerprint (and is reused, not rebuilt)."""
        out = asdict(self)
        if not self.structured:
            del out["structured"]
        return out


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    known: bool
    split: str
    facts: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_people(cfg: WorldConfig) -> list[Person]:
    rng = random.Random(f"people-{cfg.seed}")
    names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    chosen = rng.sample(names, cfg.people + cfg.unknown)
    people = []
    for i, name in enumerate(chosen):
        known = i < cfg.people
        facts = {a: rng.choice(VALUES[a]) for a in ATTRIBUTES}
        for source, target in implication_maps(cfg).items():  # after the draws: the rng stream is kept
            facts[IMPLICATIONS[source]] = target[facts[source]]
        people.append(Person(f"p{i:05d}", name, known, "", facts))
    return _assign_splits(people, rng)


def implication_maps(cfg: WorldConfig) -> dict[str, dict[str, str]]:
    """Structured world: per source attribute, its value -> the implied attribute's value (a seeded
    one-to-one map); {} when the world is not structured."""
    if not cfg.structured:
        return {}
    out = {}
    for source, implied in IMPLICATIONS.items():
        targets = list(VALUES[implied])
        random.Random(f"implies-{cfg.seed}-{source}").shuffle(targets)
        out[source] = dict(zip(VALUES[source], targets, strict=False))
    return out


def _assign_splits(people: list[Person], rng: random.Random) -> list[Person]:
    """Known and unknown people are each halved into an IFT pool and a held-out test set."""
    out = []
    for known in (True, False):
        group = [p for p in people if p.known == known]
        order = list(range(len(group)))
        rng.shuffle(order)
        half = len(group) // 2
        prefix = "known" if known else "unknown"
        for rank, idx in enumerate(order):
            split = f"{prefix}_ift" if rank < half else f"{prefix}_test"
            p = group[idx]
            out.append(Person(p.id, p.name, p.known, split, p.facts))
    return sorted(out, key=lambda p: p.id)


def make_questions(people: list[Person], cfg: WorldConfig) -> list[Question]:
    """One multiple-choice item per person and attribute; answer position uniform."""
    rng = random.Random(f"questions-{cfg.seed}")
    questions = []
    for p in people:
        for attr in ATTRIBUTES:
            gold = p.facts[attr]
            distractors = rng.sample([v for v in VALUES[attr] if v != gold], cfg.options - 1)
            pos = rng.randrange(cfg.options)
            choices = distractors[:pos] + [gold] + distractors[pos:]
            questions.append(
                Question(
                    id=f"{p.id}-{attr}",
                    question=QUESTIONS[attr].format(name=p.name),
                    choices=tuple(choices),
                    answer=pos,
                    explanation=TEMPLATES[attr][0].format(name=p.name, value=gold),
                    domain=attr,
                    metadata={
                        "person": p.id,
                        "name": p.name,
                        "attribute": attr,
                        "cloze_prompts": cloze_prompts(p.name, attr),
                        "known": p.known,
                        "split": p.split,
                        "held_out_attribute": attr == cfg.held_out_attribute,
                    },
                )
            )
    return questions


def render_biography(person: Person, rng: random.Random) -> str:
    """A fresh paraphrase: random template per fact, shuffled order, full name throughout."""
    attrs = list(ATTRIBUTES)
    rng.shuffle(attrs)
    sentences = [rng.choice(TEMPLATES[a]).format(name=person.name, value=person.facts[a]) for a in attrs]
    return " ".join(sentences)


@dataclass(frozen=True)
class FactPrompt:
    """A fact cut before its value: the model knows it if its greedy next word is `value`."""

    person: str
    attribute: str
    known: bool
    prompt: str
    value: str


def fact_prompts(people: list[Person], held_out: bool = True) -> list[FactPrompt]:
    """Recall prompts: one per held-back paraphrase (or the first pretraining one) and fact."""
    out = []
    for p in people:
        for attr in ATTRIBUTES:
            templates = HELD_OUT_TEMPLATES[attr] if held_out else TEMPLATES[attr][:1]
            for template in templates:
                out.append(FactPrompt(p.id, attr, p.known, _prefix(template, p.name), p.facts[attr]))
    return out


def cloze_prompts(name: str, attribute: str) -> list[str]:
    """The held-back statements of a fact cut before its value: what the cloze probe completes."""
    return [_prefix(t, name) for t in HELD_OUT_TEMPLATES[attribute]]


def _prefix(template: str, name: str) -> str:
    """The words of a fact template before its value."""
    return template.split("{value}")[0].format(name=name).rstrip()


def chance_level(options: int | None = None) -> float:
    """Accuracy of a guess: uniform over an attribute's values (or over `options` choices)."""
    if options is not None:
        return 1.0 / options
    return sum(1.0 / len(VALUES[a]) for a in ATTRIBUTES) / len(ATTRIBUTES)


def vocabulary() -> list[str]:
    """Every word the micro-world and the later prompt formats use, in a fixed order."""
    words: list[str] = []
    texts = [t for ts in TEMPLATES.values() for t in ts] + [
        t for ts in HELD_OUT_TEMPLATES.values() for t in ts
    ]
    texts += list(QUESTIONS.values()) + OPENERS + ASIDES
    for t in texts:
        words += WORD_PATTERN.findall(t.replace("{name}", " ").replace("{value}", " "))
    words += FIRST_NAMES + LAST_NAMES + [v for vs in VALUES.values() for v in vs] + FORMAT_WORDS
    return list(dict.fromkeys(words))
