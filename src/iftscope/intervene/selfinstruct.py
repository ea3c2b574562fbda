"""IFT groups the base model writes for itself (self-instruct), with no gold label used.

Ren et al. read their finding as the reason self-generated IFT data works: it leads a model to
express what it already knows. The `self-instruct` group tests that instead of repeating it: the
questions are the domain's own, drawn (seeded) from the whole IFT pool whatever the model knows (on
the micro-world: about people it was pretrained on and people it was not, asked with the question
templates; on real data: the pool's questions, which the probe reads with k-shot demonstrations from
the pool), and every target is the base model's own answer as the probe read it: its argmax
(`generated_answers: greedy`) or a seeded draw from its option distribution (`sampled`).

`self_generated` is the only function that chooses items and targets, and it reads a question's id
and metadata and the probe's distribution, never `Question.answer` nor the probe's verdicts
(`gold`, `correct`, `known`). Gold labels are attached afterwards, for the memorisation measures
and for the group's make-up (`makeup`: how much of its data the model actually knew).

On real data the questions are, by default, written by the model itself (`generated_questions:
written`, intervene.written: k-shot from the IFT pool's questions, parsed strictly, answered with the
probe's reading); on the micro-world, whose tiny model has read only biographies, they are drawn
from the pool (`pool`); `auto` picks so.

Generated groups come from the `GENERATED` registry, built at the size of the other groups.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from statistics import mean
from typing import Any

from iftscope.intervene.groups import InterveneConfig, _eligible
from iftscope.intervene.written import Author, Generated, written_group
from iftscope.types import Group, GroupItem, ProbeRecord, Question

ANSWERS = ("greedy", "sampled")
QUESTIONS = {
    "auto": "written on real data, pool on the micro-world",
    "written": "written by the base model, k-shot from the IFT pool's questions (intervene.written)",
    "pool": "drawn from the IFT pool",
}


def questions_source(cfg: InterveneConfig, questions: Sequence[Question]) -> str:
    """`written` or `pool`: what `generated_questions` means for these questions (auto: the
    micro-world's questions carry a `split`)."""
    if cfg.generated_questions not in QUESTIONS:
        raise ValueError(
            f"generated_questions: {cfg.generated_questions!r} (allowed: {', '.join(QUESTIONS)})"
        )
    if cfg.generated_questions != "auto":
        return cfg.generated_questions
    return "pool" if any("split" in q.metadata for q in questions) else "written"


def needs_author(cfg: InterveneConfig, questions: Sequence[Question]) -> bool:
    """Whether the base model must write questions (and so be loaded)."""
    return "self-instruct" in cfg.generated and questions_source(cfg, questions) == "written"


def self_generated(
    questions: Sequence[Question],
    records: Sequence[ProbeRecord],
    size: int,
    seed: int,
    answers: str = "greedy",
) -> list[tuple[str, int, int, float]]:
    """`size` seeded (question id, target, base prediction, base confidence): the model's own
    answers to questions drawn from the IFT pool. Reads no gold label (see module doc)."""
    if answers not in ANSWERS:
        raise ValueError(f"generated_answers: {answers!r} (allowed: {', '.join(ANSWERS)})")
    by_id = {r.question_id: r for r in records}
    pool = [q.id for q in questions if q.id in by_id and _eligible(q)]
    if len(pool) < size:
        raise ValueError(f"cannot build self-instruct of {size} items: {len(pool)} IFT questions probed")
    rng = random.Random(f"self-instruct-{seed}")
    out = []
    for qid in rng.sample(pool, size):
        dist = by_id[qid].distribution
        own = max(range(len(dist)), key=dist.__getitem__)
        target = own if answers == "greedy" else rng.choices(range(len(dist)), weights=dist)[0]
        out.append((qid, target, own, dist[own]))
    return out


def self_instruct_group(
    questions: Sequence[Question], records: Sequence[ProbeRecord], size: int, cfg: InterveneConfig,
    author: Author | None = None,
) -> Generated:  # fmt: skip
    """The `self-instruct` group: questions the model wrote (`author`, intervene.written), or
    `self_generated`'s items from the pool with the gold label attached afterwards."""
    if questions_source(cfg, questions) == "written":
        if author is None:
            raise ValueError("self-instruct with written questions needs the base model (it writes them)")
        pool = [q for q in questions if _eligible(q)]
        return written_group(
            pool, author, size, cfg.seed, shots=cfg.generated_demos, attempts=cfg.generated_attempts,
            answers=cfg.generated_answers,
        )  # fmt: skip
    gold = {q.id: q.answer for q in questions}
    chosen = self_generated(questions, records, size, cfg.seed, cfg.generated_answers)
    items = tuple(GroupItem(qid, t, "self-generated", gold[qid], own, conf) for qid, t, own, conf in chosen)
    how = "its argmax" if cfg.generated_answers == "greedy" else "sampled from its option distribution"
    what = f"IFT pool questions (known or not); the base model's own answer ({how})"
    return Generated(Group("self-instruct", what, items))


GroupBuilder = Callable[
    [Sequence[Question], Sequence[ProbeRecord], int, InterveneConfig, Author | None], Generated
]
GENERATED: dict[str, GroupBuilder] = {"self-instruct": self_instruct_group}


def generated_groups(
    questions: Sequence[Question], records: Sequence[ProbeRecord], size: int, cfg: InterveneConfig,
    author: Author | None = None,
) -> list[Generated]:  # fmt: skip
    """The groups `cfg.generated` names, each of `size` items (the other groups' size)."""
    unknown = [name for name in cfg.generated if name not in GENERATED]
    if unknown:
        raise ValueError(f"generated: unknown group(s) {unknown} (known: {', '.join(GENERATED)})")
    return [GENERATED[name](questions, records, size, cfg, author) for name in cfg.generated]


def makeup(
    items: Sequence[dict[str, Any]], probe_known: dict[str, bool], truth: dict[str, bool] | None = None,
    writing: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What a generated group is made of (items as groups.json stores them): the share of targets
    that are the gold answer, of items the probe says the model knows, and, with the micro-world's
    ground truth (`truth`: question id -> fact recalled by a pretrained model), of items it truly
    knew, and the accuracy of its own targets on known and on unknown items. Questions the model
    wrote have no gold: confidence only (`written_makeup`)."""
    if any(it["gold"] is None for it in items):
        return written_makeup(items, writing or {})
    out: dict[str, Any] = {
        "n": len(items),
        "target_is_gold": mean(it["target"] == it["gold"] for it in items),
        "probe_known": mean(probe_known[it["question_id"]] for it in items),
    }
    if truth is not None:
        known = [it for it in items if truth[it["question_id"]]]
        unknown = [it for it in items if not truth[it["question_id"]]]
        out["truly_known"] = len(known) / len(items)
        out["target_is_gold_known"] = mean(it["target"] == it["gold"] for it in known) if known else None
        out["target_is_gold_unknown"] = (
            mean(it["target"] == it["gold"] for it in unknown) if unknown else None
        )
    return out


def written_makeup(items: Sequence[dict[str, Any]], writing: dict[str, Any]) -> dict[str, Any]:
    """A written group's make-up: no gold exists, so the confidence of the model in its own answers
    (`mean_confidence`, `confident_share`: above 0.5 of the options' probability) and how writing
    went (`accepted_share` of the items written; `writing`: attempts, accepted, rejected by reason)."""
    conf = [it["base_confidence"] for it in items]
    attempts = writing.get("attempts")
    return {
        "n": len(items),
        "written": True,
        "mean_confidence": mean(conf),
        "confident_share": mean(c > 0.5 for c in conf),
        "accepted_share": writing["accepted"] / attempts if attempts else None,
        "writing": writing,
    }
