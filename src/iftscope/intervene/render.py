"""Groups -> SFT examples: a prompt template, a response style, and balanced answer letters.

The style factor (answer only, or answer and explanation) is crossed with the knowledge factor, so
knowledge and behaviour vary apart. When the options are shown, each example's options are reordered
so that every group teaches each answer letter equally often (the paper's Llama-2-7B engineering
targets were 61% "A" in H, 7% in I, 79% in S: a letter prior, not knowledge). The prompt templates
themselves live in iftscope.prompts, where the probe's trained formats read them too.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from iftscope.prompts import TEMPLATES, VICUNA_SYSTEM, chat_wrapper, sft_prompt, wrap
from iftscope.prompts import instruction as _instruction
from iftscope.types import LETTERS, Group, GroupItem, Question, SFTExample

# the templates are re-exported: callers of intervene (explain, stage, validate) name them from here
__all__ = ["STYLES", "TEMPLATES", "VICUNA_SYSTEM", "RenderConfig", "chat_wrapper", "instruction", "wrap"]

STYLES = {
    "answer": "the answer only",
    "explained": "the answer, then an explanation (the data's, made consistent with the target)",
    "self-explained": "the answer, then an explanation written by the base model itself",
}


@dataclass(frozen=True)
class RenderConfig:
    template: str = "plain"  # plain (micro-world), vicuna (the paper), chat (the model's own)
    show_options: bool = False  # list the options and answer with "C. text"
    styles: tuple[str, ...] = ("answer",)  # answer, explained (the data's), self-explained (the base model's)
    balance_letters: bool = True  # reorder options so each letter is taught equally often
    seed: int = 0  # option reordering and sampled explanations (a study sets it from `seeds`)


def explanation_for(q: Question, target: int) -> str:
    """The data's explanation, made to support the target (micro-world: the value swapped)."""
    if not q.explanation:
        raise ValueError(f"question {q.id}: style 'explained' needs an explanation in the data")
    if target == q.answer:
        return q.explanation
    gold, new = q.choices[q.answer], q.choices[target]
    swapped, n = re.subn(rf"(?<!\w){re.escape(gold)}(?!\w)", new, q.explanation)
    if n == 0:
        raise ValueError(
            f"question {q.id}: its explanation supports the gold answer and does not name it, so it "
            f"cannot be made consistent with target {LETTERS[target]}; use style 'answer'"
        )
    return swapped


def _positions(n_items: int, n_options: int, rng: random.Random) -> list[int]:
    cycle = [i % n_options for i in range(n_items)]
    rng.shuffle(cycle)
    return cycle


def _reorder(q: Question, target: int, position: int) -> tuple[list[str], int]:
    others = [c for i, c in enumerate(q.choices) if i != target]
    return others[:position] + [q.choices[target]] + others[position:], position


def instruction(q: Question, choices: Sequence[str] | None) -> str:
    """The question, with its options when they are shown (iftscope.prompts.instruction)."""
    return _instruction(q.question, choices)


def render_group(
    group: Group,
    questions: dict[str, Question],
    cfg: RenderConfig,
    chat: Callable[[str], str] | None = None,
    explanations: dict[tuple[str, int], str] | None = None,
) -> list[SFTExample]:
    """One example per item and style, in item order. `explanations` (question id, target) -> text
    written by the base model (intervene.explain) is needed for the style `self-explained`."""
    out = []
    for style in cfg.styles:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose from {sorted(STYLES)}")
        rng = random.Random(f"letters-{cfg.seed}-{group.name}-{style}")
        n_opt = max(len(questions[it.question_id].choices) for it in group.items)
        units = [(it, j) for it in group.items for j in range(group.rewordings)]
        positions = _positions(len(units), n_opt, rng)
        for (item, j), pos in zip(units, positions, strict=True):
            q = reworded(questions[item.question_id], j)
            ex = _example(group.name, item, q, style, pos, cfg, chat, group.open_book)
            if group.rewordings > 1:
                ex = replace(ex, id=f"{ex.id}~{j}")
            if style == "self-explained":
                if explanations is None:
                    raise ValueError("style 'self-explained' needs the base model to write the explanations")
                ex = replace(ex, response=ex.response + " " + explanations[(q.id, item.target)])
            out.append(ex)
    return out


def reworded(q: Question, j: int) -> Question:
    """Wording j of a micro-world question (knowledge augmentation): 0 is the question itself; j >= 1
    asks it as lexicon.AUGMENT_QUESTIONS[j - 1] and states the fact in pretraining paraphrase j (the
    explanation), so both the prompt and the explained response vary across a fact's examples."""
    if j == 0:
        return q
    from iftscope.microworld.lexicon import AUGMENT_QUESTIONS, TEMPLATES

    m = q.metadata
    if "attribute" not in m or "name" not in m:
        raise ValueError(f"question {q.id}: rewordings (I-augmented) need a micro-world question")
    attr, name = m["attribute"], m["name"]
    return replace(
        q, question=AUGMENT_QUESTIONS[attr][j - 1].format(name=name),
        explanation=TEMPLATES[attr][j % len(TEMPLATES[attr])].format(name=name, value=q.answer_text),
    )  # fmt: skip


def _example(
    group: str, item: GroupItem, q: Question, style: str, pos: int, cfg: RenderConfig, chat, open_book: bool
) -> SFTExample:
    text = q.choices[item.target]
    letter = None
    choices = None
    if cfg.show_options:
        if cfg.balance_letters:
            choices, idx = _reorder(q, item.target, pos % len(q.choices))
        else:
            choices, idx = list(q.choices), item.target
        letter = LETTERS[idx]
        answer = f"{letter}. {text}"
    else:
        answer = text
    response = " " + answer
    if style == "explained":
        response += " " + explanation_for(q, item.target).strip()
    context = explanation_for(q, item.target).strip() if open_book else None
    return SFTExample(
        id=f"{group}/{style}/{q.id}",
        group=group,
        question_id=q.id,
        prompt=sft_prompt(cfg.template, q.question, choices, chat, context),
        response=response,
        target_text=text,
        target_letter=letter,
        style=style,
        kind=item.kind,
    )
