"""Explanations written by the base model itself (the paper did this for its S group).

The style factor's third level: the response is the answer followed by what the base model writes
when asked to explain it, so the explanation's content and tone are the model's own. Generation is
seeded sampling in a fixed order and fixed batches, so the same recipe gives the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from iftscope.intervene.render import instruction, wrap
from iftscope.models.generate import generate_batched
from iftscope.types import Question


def explanation_prompt(q: Question, target: int, template: str = "plain") -> str:
    return wrap(template, instruction(q, None)) + f" {q.choices[target]}\nExplanation:"


@torch.no_grad()
def generate_explanations(
    model,
    tokenizer,
    requests: Sequence[tuple[Question, int]],
    template: str = "plain",
    max_new_tokens: int = 24,
    temperature: float = 0.7,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[tuple[str, int], str]:
    """(question id, target) -> the base model's explanation of that answer."""
    unique = sorted({(q.id, t): (q, t) for q, t in requests}.items())
    prompts = [tokenizer(explanation_prompt(q, t, template))["input_ids"] for _, (q, t) in unique]
    rows = generate_batched(
        model,
        tokenizer,
        prompts,
        max_new_tokens,
        batch_size,
        seed=seed,
        do_sample=True,
        temperature=temperature,
        top_k=0,
    )
    out: dict[tuple[str, int], str] = {}
    for (key, _), row in zip(unique, rows, strict=True):
        text = tokenizer.decode(row, skip_special_tokens=True).strip()
        out[key] = text.split("\n")[0].strip() or "(no explanation)"
    return out
