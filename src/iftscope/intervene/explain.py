"""Explanations written by the base model itself (the paper did this for its S group).

The style factor's third level: the response is the answer followed by what the base model writes
when asked to explain it, so the explanation's content and tone are the model's own. Generation is
seeded sampling in a fixed order and fixed batches, so the same recipe gives the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from iftscope.intervene.render import instruction, wrap
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
    out: dict[tuple[str, int], str] = {}
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        prompts = [tokenizer(explanation_prompt(q, t, template))["input_ids"] for _, (q, t) in chunk]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # left-padded
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        torch.manual_seed(seed * 1_000_003 + start)
        gen = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
        for (key, _), row in zip(chunk, gen[:, width:], strict=True):
            text = tokenizer.decode(row, skip_special_tokens=True).strip()
            out[key] = text.split("\n")[0].strip() or "(no explanation)"
    return out
