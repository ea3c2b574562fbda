"""Self-instruct on real data: questions the base model writes itself, then answers itself.

The issue's self-generated IFT data, as Self-Instruct makes it: k demonstrations drawn (seeded) from
the IFT pool, each a question and its lettered options as the probe lists them (never their
answers), then the model continues with a new item, sampled with a seed. A strict parser keeps an
item only when it is one question line followed by exactly the pool's (most common) number of
options `A.`, `B.` ... in order (the demonstrations all have that many), and rejects, counting each reason:

- `unparseable`: not that shape (or cut off by the token limit before the item ended);
- `empty_option`, `duplicate_options`: an option with no text, two options alike;
- `copies_demonstration`: the question of one of its own demonstrations;
- `copies_pool_or_test`: any IFT pool or test-set question (no leakage into what is measured);
- `duplicate`: a question already accepted.

Questions are compared as the data checks compare them (data.loaders.normalise_text: case, spacing
and punctuation ignored). Writing goes
on, a batch per round, until the group has the other groups' size or `generated_attempts` x size
items were written; a group that cannot be filled is an error that gives the counts (groups must
have one size: equal budgets). The model then answers each accepted question with the probe's own
reading (`answer`): the target is its argmax or a seeded draw (`generated_answers`). No gold label
exists for these questions; `Question.answer` of a written question is the model's own answer.

This module is pure: `Author` carries the model as two callables (`author.py` builds them from a
loaded model), so the filling, retries and seeding are tested with a scripted fake.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import quantiles
from typing import Any

from iftscope.data.loaders import normalise_text as norm
from iftscope.types import LETTERS, Group, GroupItem, Question

REASONS = (
    "unparseable", "empty_option", "duplicate_options", "copies_demonstration", "copies_pool_or_test",
    "duplicate",
)  # fmt: skip
HEADER = "The following are multiple choice questions about {domain}."
_OPTION = re.compile(r"^([A-Z])[.)]\s*(.*)$")


@dataclass(frozen=True)
class Author:
    """The base model as a writer: `write(prompts, seed)` -> per prompt (text generated, whether it
    ended on its own: EOS, not the token limit); `answer(questions)` -> per question its option
    distribution, as the probe reads it. `forbidden`: test-set questions no item may copy."""

    write: Callable[[list[str], int], list[tuple[str, bool]]]
    answer: Callable[[list[Question]], list[Sequence[float]]]
    forbidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generated:
    """A generated group, the questions the model wrote for it (none when they are drawn from the
    pool) and how writing went (None when drawn)."""

    group: Group
    questions: tuple[Question, ...] = ()
    writing: dict[str, Any] | None = None


def block(q: Question) -> str:
    """A demonstration as the probe lists a question: the question, then `A. text` per option."""
    return "\n".join([q.question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices)])


def writing_prompt(demos: Sequence[Question]) -> str:
    """The header (the demonstrations' most common domain), the demonstrations, then room for one more."""
    domains = Counter((d.domain or "general knowledge").replace("_", " ") for d in demos)
    head = HEADER.format(domain=domains.most_common(1)[0][0])
    return "\n\n".join([head, *(block(d) for d in demos)]) + "\n\n"


def parse_item(text: str, n_options: int, ended: bool) -> tuple[str, tuple[str, ...]] | str:
    """(question, options) from the text a model wrote after `writing_prompt`, or the reason it is
    rejected (REASONS). The item ends at the first blank line, or at the text's end when `ended`."""
    body = text.lstrip("\n")
    if "\n\n" in body:
        body = body.split("\n\n", 1)[0]
    elif not ended:
        return "unparseable"  # cut off by the token limit: the last option may be truncated
    lines = [line.strip() for line in body.strip().split("\n")]
    if len(lines) != 1 + n_options or not lines[0] or _OPTION.match(lines[0]):
        return "unparseable"
    options = []
    for i, line in enumerate(lines[1:]):
        m = _OPTION.match(line)
        if m is None or m.group(1) != LETTERS[i]:
            return "unparseable"
        options.append(m.group(2).strip())
    if not all(options):
        return "empty_option"
    if len({norm(o) for o in options}) < n_options:
        return "duplicate_options"
    return lines[0], tuple(options)


def _n_options(pool: Sequence[Question]) -> int:
    """The pool's most common number of options (ties: the smaller): what every written item has."""
    widths = Counter(len(q.choices) for q in pool)
    if not widths:
        raise ValueError("written questions: the IFT pool is empty")
    return min(widths, key=lambda w: (-widths[w], w))


def write_questions(
    pool: Sequence[Question], author: Author, size: int, seed: int, shots: int, attempts: int
) -> tuple[list[Question], dict[str, Any]]:
    """`size` questions the model wrote (answer 0 for now: unanswered), and the statistics:
    `attempts`, `accepted`, `rejected` by reason, `rounds`. Seeded: demonstrations from
    Random(seed, attempt), samples from the author's seed per round."""
    n_opt, budget = _n_options(pool), attempts * size
    pool = [q for q in pool if len(q.choices) == n_opt]  # demonstrations of that shape only
    if len(pool) < shots or shots < 1:
        raise ValueError(f"intervene.generated_demos: {shots} demonstrations, the IFT pool has {len(pool)}")
    known = {norm(q.question) for q in pool} | {norm(t) for t in author.forbidden}
    accepted: list[Question] = []
    seen: set[str] = set()
    rejected = Counter({r: 0 for r in REASONS})
    used = rounds = 0
    while len(accepted) < size and used < budget:
        n = min(size - len(accepted), budget - used)
        demos = [_demos(pool, shots, seed, used + i) for i in range(n)]
        texts = author.write([writing_prompt(d) for d in demos], seed * 1_000 + rounds)
        used, rounds = used + n, rounds + 1
        for ds, (text, ended) in zip(demos, texts, strict=True):
            got = _check(parse_item(text, n_opt, ended), ds, known, seen)
            if isinstance(got, str):
                rejected[got] += 1
                continue
            question, options = got
            seen.add(norm(question))
            qid = f"written-s{seed}-{len(accepted):04d}"
            meta = {"written": True, "demonstrations": [d.id for d in ds]}
            accepted.append(Question(qid, question, options, 0, domain=ds[0].domain, metadata=meta))
    stats = {"attempts": used, "accepted": len(accepted), "rejected": dict(rejected), "rounds": rounds}
    if len(accepted) < size:
        raise ValueError(
            f"self-instruct: the model wrote {len(accepted)} usable questions of the {size} needed in "
            f"{used} attempts (rejected: {dict(rejected)}); raise intervene.generated_attempts or "
            "intervene.generated_tokens, or use intervene.generated_questions: pool"
        )
    return accepted, stats


def _demos(pool: list[Question], shots: int, seed: int, attempt: int) -> list[Question]:
    """The demonstrations of one attempt: seeded by the recipe's seed and the attempt's number."""
    return random.Random(f"self-instruct-write-{seed}-{attempt}").sample(pool, shots)


def _check(parsed, demos: Sequence[Question], known: set[str], seen: set[str]):
    """The parsed item, or the reason it is rejected."""
    if isinstance(parsed, str):
        return parsed
    key = norm(parsed[0])
    if key in {norm(d.question) for d in demos}:
        return "copies_demonstration"
    if key in known:
        return "copies_pool_or_test"
    return "duplicate" if key in seen else parsed


def written_group(
    pool: Sequence[Question], author: Author, size: int, seed: int, *, shots: int, attempts: int, answers: str
) -> Generated:
    """The `self-instruct` group on real data: questions the model wrote, each with its own answer
    as target (`answers`: greedy = its argmax, sampled = a seeded draw from its distribution)."""
    questions, stats = write_questions(pool, author, size, seed, shots, attempts)
    dists = author.answer(questions)
    rng = random.Random(f"self-instruct-answers-{seed}")
    items, answered = [], []
    for q, dist in zip(questions, dists, strict=True):
        own = max(range(len(dist)), key=dist.__getitem__)
        target = own if answers == "greedy" else rng.choices(range(len(dist)), weights=dist)[0]
        meta = {**q.metadata, "answer_source": "the base model's own answer (no gold exists)"}
        answered.append(Question(q.id, q.question, q.choices, target, domain=q.domain, metadata=meta))
        items.append(GroupItem(q.id, target, "self-written", None, own, float(dist[own])))
    confidences = [it.base_confidence for it in items]
    stats["confidence_quartiles"] = [round(x, 4) for x in quantiles(confidences, n=4)] if size > 1 else None
    how = "its argmax" if answers == "greedy" else "sampled from its option distribution"
    what = f"questions written by the base model; its own answer ({how}); no gold"
    return Generated(Group("self-instruct", what, tuple(items)), tuple(answered), stats)
