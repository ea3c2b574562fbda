"""What a tuned model does beyond accuracy: memorised training targets, retained biographies,
answers stable under reworded questions and rotated options, and what it says when it generates.

Each function takes a scorer (or model) and questions and returns a JSON-ready dict; the evaluate
stage stores them in metrics.json (`_memorisation`, `_behaviour`, `<main set>.generation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from iftscope.models.scorer import Scorer
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig, probe
from iftscope.prompts import chat_wrapper, sft_prompt
from iftscope.types import ProbeRecord, Question


def _zero_shot(scorer: Scorer, questions: Sequence[Question], pool: Sequence[Question], fmt_name: str):
    fmt = get_format(fmt_name).with_tokenizer(scorer.tokenizer)
    return list(probe(scorer, questions, pool, fmt, ProbeConfig(format=fmt.name, shots=0)))


def memorisation(
    scorer: Scorer, trained: Sequence[Question], gold: Sequence[int | None], pool: Sequence[Question],
    fmt_name: str,
) -> dict[str, Any]:  # fmt: skip
    """The trained questions themselves (answer = the trained target): is the target memorised,
    and how often does the model still give the gold answer? (No `gold_accuracy` when some
    question has no gold: questions the base model wrote itself.)"""
    recs = _zero_shot(scorer, trained, pool, fmt_name)
    n = max(len(recs), 1)
    out = {"trained_n": len(recs), "target_accuracy": sum(r.correct for r in recs) / n}
    if all(g is not None for g in gold):
        out["gold_accuracy"] = sum(r.prediction == g for r, g in zip(recs, gold, strict=True)) / n
    return out


def retention(scorer: Scorer, held: Sequence[Question], probe_cfg: ProbeConfig) -> dict[str, float]:
    """Pretrained biographies read as the base model's cloze probe reads them: did fine-tuning
    erase them? (micro-world; the cloze statements are the question's metadata)."""
    cloze = get_format("cloze")
    rs = list(probe(scorer, held, held, cloze, replace(probe_cfg, format="cloze", shots=0)))
    n = max(len(rs), 1)
    return {
        "retention_accuracy": sum(r.correct for r in rs) / n,
        "retention_known": sum(r.known for r in rs) / n,
    }


def stability(
    scorer: Scorer,
    questions: Sequence[Question],
    scored: Sequence[ProbeRecord],
    pool: Sequence[Question],
    fmt_name: str,
    paraphrases: dict[str, str] | None = None,
) -> dict[str, float]:
    """Does the answer stay when the question is reworded (`paraphrases`: attribute -> template
    with {name}, micro-world) or the options are rotated (letter formats)? Agreement with the
    answers already `scored` for the same questions."""
    qs = list(questions)

    def answers(variant: Sequence[Question]) -> list[str]:
        return [
            q.choices[r.prediction]
            for q, r in zip(variant, _zero_shot(scorer, variant, pool, fmt_name), strict=True)
        ]

    before, out = [q.choices[r.prediction] for q, r in zip(qs, scored, strict=False)], {}
    if paraphrases and all("attribute" in q.metadata and "name" in q.metadata for q in qs):
        para = [
            replace(q, question=paraphrases[q.metadata["attribute"]].format(name=q.metadata["name"]))
            for q in qs
        ]
        out["paraphrase_stability"] = _agreement(before, answers(para))
    if get_format(fmt_name).mode == "letter":
        rot = [
            replace(q, choices=q.choices[1:] + q.choices[:1], answer=(q.answer - 1) % len(q.choices))
            for q in qs
        ]
        out["permutation_stability"] = _agreement(before, answers(rot))
    return out


def _agreement(a: Sequence[str], b: Sequence[str]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def generation(
    model, base_model, tokenizer, questions: Sequence[Question], template: str, show_options: bool = False
) -> dict[str, Any]:
    """Greedy answers of the tuned model, asked exactly as it was trained (`template`, with the
    options listed when it was trained with them), and the shift of their tokens from the base
    model (URIAL)."""
    from iftscope.evaluate.generation import generation_metrics

    prompts = trained_prompts(tokenizer, questions, template, show_options)
    return generation_metrics(model, base_model, tokenizer, list(questions), prompts, letters=show_options)


def trained_prompts(tokenizer, questions: Sequence[Question], template: str, show_options: bool) -> list[str]:
    """The SFT prompt of each question (its options in their own order when shown)."""
    chat = chat_wrapper(tokenizer) if template == "chat" else None
    return [sft_prompt(template, q.question, q.choices if show_options else None, chat) for q in questions]
