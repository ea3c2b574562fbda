"""The probe's core: questions in, one ProbeRecord per question out (no file I/O here)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from iftscope.probe.formats import DEMO_SETS_X_PERMUTATIONS, LETTER, STATEMENTS, PromptFormat
from iftscope.types import ProbeRecord, Question

if TYPE_CHECKING:  # the scorer (torch) is imported by whoever makes one, not by the probe's config
    from iftscope.models.scorer import Scorer


@dataclass(frozen=True)
class ProbeConfig:
    format: str = "paper"  # prompt format (probe.formats: what each scores, how it builds a prompt)
    shots: int = 5  # demonstrations per prompt (0 for formats that score statements)
    demo_sets: int = 1  # >1: several random demonstration sets, averaged
    demos: str = "shared"  # shared (one seeded set, encoded once), per-question, first (the pool's first k)
    permutations: int = 1  # cyclic option rotations averaged (cancels position bias); 1 = off
    normalise: str = "sum"  # continuation mode: "sum" (acc), "char" (acc_norm) or "token"
    temperature: float = 0.5  # tempering of the option distribution for GoldPlausible (not sampled)
    weak_threshold: float = 1 / 16  # tempered P(gold), at or above which a miss is GoldPlausible
    known_rule: str = "generative"  # when a question counts as known (probe.knowledge.KNOWN_RULES)
    known_threshold: float = 0.5  # the known rule's threshold
    seed: int = 0  # seeds the demonstrations drawn
    batch_questions: int = 64  # questions scored together (memory vs speed)
    backend: str = "native"  # who scores: native (iftscope's scorer) or lm-eval (docs/lm-eval.md)
    lm_eval_model: str = "hf"  # backend lm-eval: its model type (hf, vllm, sglang ...)
    # backend lm-eval: its model_args, e.g. "dtype=bfloat16,tensor_parallel_size=2" (pretrained: the model)
    lm_eval_args: str = ""


DEMO_CHOICES = {
    "shared": "one seeded random set per demonstration set, shared by every question (the target "
    "itself swapped for a spare): the shared prefix is encoded once",
    "per-question": "a seeded random set per question (slower: nothing is shared)",
    "first": "the pool's first k items for every question (the paper's fixed demonstrations)",
}

BACKENDS = {
    "native": "iftscope's own scorer, through the score cache",
    "lm-eval": "lm-evaluation-harness's Python API with probe.lm_eval_model and probe.lm_eval_args (hf, "
    "vllm, ...) on the exported task folder, its logged log-likelihoods imported "
    "(pip install 'iftscope[lm-eval]')",
}

KNOWN_RULES = {
    "generative": "the model gives the gold answer probability >= threshold over its whole vocabulary "
    "(it would say it, not only prefer it among the options)",
    "confident": "the gold option is the argmax and its share of the options' probability > threshold",
    "argmax": "the gold option is the argmax (the paper's 'correct')",
}


def is_known(rule: str, correct: bool, confidence: float, gold_abs_prob: float, threshold: float) -> bool:
    if rule == "generative":
        return gold_abs_prob >= threshold
    if rule == "confident":
        return correct and confidence > threshold
    if rule == "argmax":
        return correct
    raise ValueError(f"unknown known_rule {rule!r}; choose from {sorted(KNOWN_RULES)}")


def choose_demos(q: Question, pool: Sequence[Question], cfg: ProbeConfig, set_index: int) -> list[Question]:
    """k demonstrations from the pool, never the target question itself, seeded per question."""
    candidates = [d for d in pool if d.id != q.id and d.question.strip() != q.question.strip()]
    if len(candidates) < cfg.shots:
        raise ValueError(
            f"question {q.id}: the demonstration pool has {len(candidates)} usable items, "
            f"{cfg.shots} shots asked for"
        )
    if cfg.demos == "first":
        return candidates[: cfg.shots]
    if cfg.demos == "per-question":
        return random.Random(f"{cfg.seed}-{set_index}-{q.id}").sample(candidates, cfg.shots)
    if cfg.demos == "shared":  # the same draw for all; the target (if drawn) makes room for a spare
        drawn = random.Random(f"{cfg.seed}-{set_index}").sample(list(pool), min(len(pool), cfg.shots + 1))
        kept = [d for d in drawn if d.id != q.id and d.question.strip() != q.question.strip()]
        if len(kept) >= cfg.shots:
            return kept[: cfg.shots]
        return random.Random(f"{cfg.seed}-{set_index}-{q.id}").sample(candidates, cfg.shots)
    raise ValueError(f"unknown demos choice {cfg.demos!r}; choose from {sorted(DEMO_CHOICES)}")


def letter_token_ids(scorer: Scorer, fmt: PromptFormat, n_options: int) -> list[int]:
    """The token ids a letter format scores, as its prompt writes the letters. A tokenizer that
    merges the cue and the letter (':C' one token, as in Llama-3, Qwen2, tekken) cannot be read by
    a format that writes them together: the error says which formats can."""
    context = fmt.letter_context()
    try:
        return [scorer.single_token_id(context, fmt.letter(i)) for i in range(n_options)]
    except ValueError as e:
        advice = ""
        if not fmt.letter_prefix and not fmt.uses_chat_template:  # 'Answer:C': the cue, the bare letter
            advice = (
                "; it merges the letter with the cue before it. Use a format whose letter is a token of "
                "its own: --format mmlu (' A' after 'Answer:') or chat (the model's chat template)"
            )
        raise ValueError(f"format {fmt.id} cannot be scored with this tokenizer: {e}{advice}") from e


# Confidence categories from the probe's option distributions. They are modelled on SliCK's
# (Gekhman et al. 2024) but are NOT SliCK: SliCK samples free generations (greedy and T = 0.5) over
# several demonstration sets; here the "sampled" probability is an analytic tempered softmax over the
# options (ProbeRecord.sampled_accuracy), so they are named for what they measure.
CONFIDENCE_CATEGORIES = {
    "AllViewsRight": "every view's most probable option is the gold one",
    "SomeViewsRight": "some views' most probable option is the gold one, not all",
    "GoldPlausible": "no view right, but the option distribution tempered at `temperature` gives the "
    "gold option at least `weak_threshold`",
    "GoldImplausible": "no view right and the tempered gold probability below `weak_threshold`",
}


def confidence_category(view_correct: Sequence[bool], tempered: float, weak_threshold: float) -> str:
    """One question's confidence category (CONFIDENCE_CATEGORIES) from its views and the tempered
    probability of the gold option."""
    if all(view_correct):
        return "AllViewsRight"
    if any(view_correct):
        return "SomeViewsRight"
    return "GoldPlausible" if tempered >= weak_threshold else "GoldImplausible"


def probe_views(fmt: PromptFormat, batch: Sequence[Question], cfg: ProbeConfig) -> list[tuple[int, int]]:
    """(demonstration set or statement, option rotation) per view, as the format declares its views."""
    if fmt.views == DEMO_SETS_X_PERMUTATIONS:
        return [(s, r) for s in range(cfg.demo_sets) for r in range(cfg.permutations)]
    if fmt.views == STATEMENTS:  # option order does not matter: the views are the statements
        return [(s, 0) for s in range(len(fmt.cloze_contexts(batch[0])))]
    return [(s, 0) for s in range(cfg.demo_sets)]  # k-shot continuation: the demonstration sets


def view_contexts(
    fmt: PromptFormat, batch: Sequence[Question], pool: Sequence[Question], cfg: ProbeConfig, s: int
) -> list[str]:
    """The contexts a continuation format continues in view s: a statement or a k-shot context."""
    if fmt.views == STATEMENTS:
        return [fmt.cloze_contexts(q)[s] for q in batch]
    return [fmt.continuation_context(q, choose_demos(q, pool, cfg, s) if cfg.shots else []) for q in batch]


def _view_distributions(
    scorer: Scorer, fmt: PromptFormat, batch: Sequence[Question], pool: Sequence[Question], cfg: ProbeConfig
) -> tuple[np.ndarray, np.ndarray]:
    """[question, view, option] distributions in original option order, and [question, view]
    probability mass on the options (letters, or option texts as continuations)."""
    n_opt = len(batch[0].choices)
    views = probe_views(fmt, batch, cfg)
    dists = np.zeros((len(batch), len(views), n_opt))
    masses = np.zeros((len(batch), len(views)))
    for v, (s, r) in enumerate(views):
        rotated = [q.choices[r:] + q.choices[:r] for q in batch]  # rotated[j] = original[(j + r) % n]
        back = [(j + r) % n_opt for j in range(n_opt)]
        if fmt.mode == LETTER:
            prompts = [
                fmt.letter_prompt(q, ch, choose_demos(q, pool, cfg, s) if cfg.shots else [])
                for q, ch in zip(batch, rotated, strict=True)
            ]
            ids = letter_token_ids(scorer, fmt, n_opt)
            scores = scorer.letter_logprobs(prompts, ids)
            d, masses[:, v] = scores.distribution, scores.mass
        else:
            contexts = view_contexts(fmt, batch, pool, cfg, s)
            pairs = [(ctx, " " + c) for ctx, ch in zip(contexts, rotated, strict=True) for c in ch]
            cont = scorer.continuation_logprobs(pairs)
            denom = {"sum": lambda c: 1, "char": lambda c: c.chars, "token": lambda c: c.tokens}[
                cfg.normalise
            ]
            ll = np.array([c.logprob / denom(c) for c in cont]).reshape(len(batch), n_opt)
            d = np.exp(ll - ll.max(axis=1, keepdims=True))
            d /= d.sum(axis=1, keepdims=True)
            masses[:, v] = np.exp([c.logprob for c in cont]).reshape(len(batch), n_opt).sum(axis=1)
        dists[:, v, back] = d
    return dists, masses


def probe(
    scorer: Scorer,
    questions: Sequence[Question],
    pool: Sequence[Question],
    fmt: PromptFormat,
    cfg: ProbeConfig,
) -> Iterator[ProbeRecord]:
    """Score every question under every view and yield its record, in input order."""
    is_known(cfg.known_rule, True, 1.0, 1.0, cfg.known_threshold)  # fail early on a bad rule name
    if fmt.zero_shot_only and cfg.shots:
        raise ValueError(f"format {fmt.id} scores statements zero-shot; use shots=0")
    # Questions with the same number of options (and of cloze statements) are scored together.
    for start in range(0, len(questions), cfg.batch_questions):
        chunk = questions[start : start + cfg.batch_questions]
        by_width: dict[tuple[int, int], list[int]] = {}
        for i, q in enumerate(chunk):
            statements = len(fmt.cloze_contexts(q)) if fmt.views == STATEMENTS else 0
            by_width.setdefault((len(q.choices), statements), []).append(i)
        records: dict[int, ProbeRecord] = {}
        for idxs in by_width.values():
            batch = [chunk[i] for i in idxs]
            dists, masses = _view_distributions(scorer, fmt, batch, pool, cfg)
            for q, i, d, m in zip(batch, idxs, dists, masses, strict=True):
                records[i] = record_from_views(q, d, m, fmt, cfg)
        yield from (records[i] for i in range(len(chunk)))


def record_from_views(
    q: Question, view_dists: np.ndarray, masses: np.ndarray, fmt: PromptFormat, cfg: ProbeConfig
) -> ProbeRecord:
    mean = view_dists.mean(axis=0)
    pred = int(mean.argmax())
    view_correct = [int(v.argmax()) == q.answer for v in view_dists]
    tempered = view_dists ** (1.0 / cfg.temperature)
    sampled = float((tempered[:, q.answer] / tempered.sum(axis=1)).mean())
    gold_abs = float((view_dists[:, q.answer] * masses).mean())
    correct, confidence = pred == q.answer, float(mean[pred])
    return ProbeRecord(
        question_id=q.id,
        domain=q.domain,
        gold=q.answer,
        distribution=tuple(float(x) for x in mean),
        prediction=pred,
        correct=correct,
        confidence=confidence,
        gold_prob=float(mean[q.answer]),
        option_mass=float(masses.mean()),
        gold_abs_prob=gold_abs,
        known=is_known(cfg.known_rule, correct, confidence, gold_abs, cfg.known_threshold),
        view_accuracy=sum(view_correct) / len(view_correct),
        sampled_accuracy=sampled,
        category=confidence_category(view_correct, sampled, cfg.weak_threshold),
        format=fmt.id,
        views=len(view_dists),
    )
