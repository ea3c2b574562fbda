"""Knowledge-intervened IFT groups from probe records (Ren et al.'s H, I, S and mixtures).

Every group has the same size and differs from the others in one factor:
- H (harmonious): questions the base model knows, gold targets;
- I (incompatible): questions it confidently gets wrong, gold targets: new world knowledge;
- S (self-aligning): exactly the items of I, target = the model's own (wrong) answer;
- mix-r: the items of I, a seeded fraction r of them with S targets (nested across r);
- I-context: the items of I, gold targets, the supporting fact in the prompt (open book);
- micro-world only, where ground truth allows them: unknown-gold (people never pretrained, true
  facts) and counterfactual (known facts, a false value that contradicts pretraining);
- I-augmented (micro-world, when `augment` > 1): the items of I, gold targets, each fact taught in
  `augment` wordings within the same training steps: the positive control, built to make learning
  succeed (knowledge augmentation, Allen-Zhu & Li 2023).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from iftscope.intervene.matching import matched_capacity, matched_sample
from iftscope.types import Group, GroupItem, ProbeRecord, Question


@dataclass(frozen=True)
class InterveneConfig:
    confidence: float = 0.5  # I and S: the base model's wrong answer has probability above this
    mixtures: tuple[float, ...] = (0.5,)  # fractions of I items given self-aligning targets
    micro_world: bool = True  # add unknown-gold and counterfactual when the data is a micro-world
    contextualized: bool = True  # add I-context when every I item has an explanation
    size: int | None = None  # None: the largest size every group can have
    explanation_tokens: int = 24  # self-explained: the base model's explanation, at most this many tokens
    explanation_temperature: float = 0.7  # self-explained: sampling temperature (top-p 1, no top-k)
    seed: int = 0  # which items each group draws (a study sets it from `seeds`)
    generated: tuple[str, ...] = ()  # groups the base model writes itself (self-instruct), same size
    generated_answers: str = "greedy"  # self-instruct targets: the model's argmax (greedy) or sampled, seeded
    # self-instruct questions: written (by the base model, k-shot from the IFT pool), pool (drawn
    # from it), auto (written on real data, pool on the micro-world, whose tiny model cannot write)
    generated_questions: str = "auto"
    generated_demos: int = 5  # written: IFT pool questions shown (options, no answers) per item written
    generated_attempts: int = 4  # written: at most this many items written per item needed, then an error
    generated_tokens: int = 160  # written: at most this many new tokens per item
    generated_temperature: float = 1.0  # written: sampling temperature (top-p 1, no top-k), seeded
    # I-augmented: each I fact in this many wordings (1 + lexicon.AUGMENT_QUESTIONS; 0 or 1: no
    # such group); micro-world only
    augment: int = 0
    rule: str = "confidence"  # H/I: confidence (right/wrong with confidence > threshold) or known (old H)
    match_confidence: bool = False  # draw H and I with matched base-confidence distributions (stratified)
    match_bins: int = 20  # ... stratified over this many confidence bins (equal width in log-odds)
    categories: tuple[str, ...] = ()  # confidence categories (probe.knowledge) added as groups cat-<name>


RULES = {
    "confidence": "H: the base model's prediction is right with confidence > intervene.confidence; I: it "
    "is wrong with confidence > intervene.confidence (one rule family, one threshold)",
    "known": "H: known by the probe's known_rule and threshold (e.g. P(gold) >= 0.5 over the whole "
    "vocabulary); I: wrong with confidence > intervene.confidence (the rule before issue 15)",
}


def _eligible(q: Question) -> bool:
    """Micro-world: only IFT splits, never the held-out attribute (both are test sets)."""
    m = q.metadata
    if "split" not in m:
        return True
    return m["split"].endswith("_ift") and not m.get("held_out_attribute", False)


def _item(q: Question, r: ProbeRecord, target: int, kind: str) -> GroupItem:
    """One item: the question, the target taught for it, and what the base model said."""
    return GroupItem(q.id, target, kind, q.answer, r.prediction, r.confidence)


def candidate_pools(
    questions: Sequence[Question], records: Sequence[ProbeRecord], cfg: InterveneConfig
) -> dict[str, list[tuple[Question, ProbeRecord]]]:
    """Per group, the (question, probe record) pairs that may go into it."""
    by_id = {r.question_id: r for r in records}
    pairs = [(q, by_id[q.id]) for q in questions if q.id in by_id and _eligible(q)]
    if cfg.rule not in RULES:
        raise ValueError(f"intervene.rule: unknown rule {cfg.rule!r}; choose from {sorted(RULES)}")

    def harmonious(r: ProbeRecord) -> bool:
        return r.known if cfg.rule == "known" else r.correct and r.confidence > cfg.confidence

    pools = {
        "H": [(q, r) for q, r in pairs if harmonious(r)],
        "I": [(q, r) for q, r in pairs if r.confidently_wrong(cfg.confidence)],
    }
    pools |= {f"cat-{c}": [(q, r) for q, r in pairs if r.category == c] for c in cfg.categories}
    if cfg.micro_world and any("known" in q.metadata for q, _ in pairs):
        pools["unknown-gold"] = [(q, r) for q, r in pairs if not q.metadata["known"]]
        pools["counterfactual"] = [(q, r) for q, r in pairs if q.metadata["known"] and r.known]
    return pools


def build_groups(
    questions: Sequence[Question], records: Sequence[ProbeRecord], cfg: InterveneConfig
) -> list[Group]:
    """Seeded, equal-sized groups; I, S and the mixtures share exactly the same items."""
    pools = candidate_pools(questions, records, cfg)
    size = _group_size(pools, cfg.size)
    rng = random.Random(f"groups-{cfg.seed}")
    if cfg.match_confidence:
        size = min(size, matched_capacity(pools["H"], pools["I"], cfg.match_bins, cfg.size))
    chosen = {name: rng.sample(pool, size) for name, pool in sorted(pools.items())}
    if cfg.match_confidence:
        match_rng = random.Random(f"match-{cfg.seed}")
        chosen["H"], chosen["I"] = matched_sample(pools["H"], pools["I"], size, cfg.match_bins, match_rng)
    i_items = _gold(chosen["I"])
    groups = [
        Group("H", "known to the base model; gold targets", _gold(chosen["H"])),
        Group("I", "confidently wrong; gold targets (new knowledge)", i_items),
        Group(
            "S",
            "the items of I; the model's own answer as target (self-aligning)",
            tuple(_item(q, r, r.prediction, "self") for q, r in chosen["I"]),
        ),
    ]
    groups += [_mixture(chosen["I"], ratio, cfg.seed) for ratio in cfg.mixtures]
    if cfg.contextualized and all(q.explanation for q, _ in chosen["I"]):
        groups.append(
            Group(
                "I-context",
                "the items of I; gold targets; the supporting fact in the prompt (open book)",
                i_items,
                open_book=True,
            )
        )
    if "unknown-gold" in chosen:
        groups += _micro_world_groups(chosen, cfg.seed)
        if cfg.augment > 1:
            groups.append(_augmented(i_items, cfg.augment))
    groups += [
        Group(f"cat-{c}", f"confidence category {c}; gold targets", _gold(chosen[f"cat-{c}"]))
        for c in cfg.categories
    ]
    return groups


def _augmented(i_items: tuple[GroupItem, ...], rewordings: int) -> Group:
    """The positive control: I's items and targets, each fact in several wordings (render picks
    them from the micro-world's lexicon); the study's step budget is the same for every group."""
    from iftscope.microworld.lexicon import AUGMENT_QUESTIONS

    most = 1 + min(len(v) for v in AUGMENT_QUESTIONS.values())
    if rewordings > most:
        raise ValueError(f"intervene.augment: at most {most} wordings per fact exist, got {rewordings}")
    return Group(
        "I-augmented",
        f"the items of I; gold targets, each fact in {rewordings} wordings (knowledge augmentation)",
        i_items,
        rewordings=rewordings,
    )


def _group_size(pools: dict[str, list], size: int | None) -> int:
    """The requested size, or the largest every pool can fill; an error names the short pools."""
    available = {name: len(p) for name, p in pools.items()}
    size = size if size is not None else min(available.values())
    short = {name: n for name, n in available.items() if n < size}
    if size < 1 or short:
        raise ValueError(
            f"cannot build groups of {size} items: candidates per group {available} "
            "(lower the size, or the confidence threshold for I)"
        )
    return size


def _gold(pairs: Sequence[tuple[Question, ProbeRecord]]) -> tuple[GroupItem, ...]:
    """Items that teach the data's own answer."""
    return tuple(_item(q, r, q.answer, "gold") for q, r in pairs)


def _mixture(pairs: Sequence[tuple[Question, ProbeRecord]], ratio: float, seed: int) -> Group:
    """The items of I, the first round(ratio x size) of one seeded order of them with the model's
    own answer as target: mixtures are nested (r = 0.25's self-aligning items are among r = 0.75's),
    so a dose-response across r compares like with like."""
    size = len(pairs)
    k = round(ratio * size)
    selfish = set(random.Random(f"mix-{seed}").sample(range(size), size)[:k])
    items = tuple(
        _item(q, r, r.prediction, "self") if i in selfish else _item(q, r, q.answer, "gold")
        for i, (q, r) in enumerate(pairs)
    )
    return Group(f"mix-{ratio:g}", f"the items of I; {k} of {size} with self-aligning targets", items)


def _micro_world_groups(chosen: dict[str, list[tuple[Question, ProbeRecord]]], seed: int) -> list[Group]:
    """unknown-gold (never pretrained, true facts) and counterfactual (known facts, a seeded false
    value): only the micro-world's ground truth tells these items apart."""
    cf_rng = random.Random(f"counterfactual-{seed}")
    false_values = tuple(
        _item(q, r, cf_rng.choice([i for i in range(len(q.choices)) if i != q.answer]), "counterfactual")
        for q, r in chosen["counterfactual"]
    )
    return [
        Group("unknown-gold", "people never pretrained; true facts", _gold(chosen["unknown-gold"])),
        Group("counterfactual", "known facts; a false value that contradicts pretraining", false_values),
    ]
