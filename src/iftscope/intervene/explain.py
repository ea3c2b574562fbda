"""Explanations written by the base model itself (the paper did this for its S group).

The style factor's third level: the response is the answer followed by what the base model writes
when asked to explain it, so the explanation's content and tone are the model's own. Generation is
seeded sampling in a fixed order and fixed batches, so the same recipe gives the same text.

The sampling is ours, not the model's: `model.generate` fills every setting it is not given from
the model's generation_config.json (Llama-2 ships top_p 0.9 and temperature 0.6, Qwen2-Instruct
top_k 20 and repetition_penalty 1.05), so passing only a temperature and top_k would sample from a
truncated distribution that depends on which checkpoint was downloaded. Every such knob is set here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from iftscope.intervene.render import instruction, wrap
from iftscope.models.generate import generate_batched
from iftscope.types import Question

# the neutral value of every setting a generation_config can carry that changes what is sampled
NEUTRAL_SAMPLING: dict[str, Any] = {
    "num_beams": 1,
    "top_k": 0,
    "top_p": 1.0,
    "min_p": 0.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
}


def sampling_settings(temperature: float) -> dict[str, Any]:
    """Plain sampling at `temperature` from the whole distribution, whatever the model's
    generation_config says (see the module docstring)."""
    if temperature <= 0:
        raise ValueError(f"explanation temperature must be > 0, got {temperature}")
    return {"do_sample": True, "temperature": temperature, **NEUTRAL_SAMPLING}


def explanation_prompt(
    q: Question, target: int, template: str = "plain", chat: Callable[[str], str] | None = None
) -> str:
    """The question in the SFT template, the target's text as the answer, then `Explanation:`."""
    return wrap(template, instruction(q, None), chat) + f" {q.choices[target]}\nExplanation:"


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
    chat: Callable[[str], str] | None = None,
) -> dict[tuple[str, int], str]:
    """(question id, target) -> the base model's explanation of that answer: its first line, of
    at most `max_new_tokens` tokens. `chat` renders the `chat` template (render.chat_wrapper)."""
    unique = sorted({(q.id, t): (q, t) for q, t in requests}.items())
    prompts = [tokenizer(explanation_prompt(q, t, template, chat))["input_ids"] for _, (q, t) in unique]
    rows = generate_batched(
        model, tokenizer, prompts, max_new_tokens, batch_size, seed=seed, **sampling_settings(temperature)
    )
    out: dict[tuple[str, int], str] = {}
    for (key, _), row in zip(unique, rows, strict=True):
        text = tokenizer.decode(row, skip_special_tokens=True).strip()
        out[key] = text.split("\n")[0].strip() or "(no explanation)"
    return out
