"""Batched generation from left-padded prompts: the one loop behind greedy answers (evaluation)
and the base model's self-written explanations (intervention).

Prompts are left-padded so that every row of a batch ends at the same position and the new tokens
start together; the attention mask hides the padding. Batches are taken in the given order, so a
caller that sorts its prompts gets the same batches, and with a seed the same samples, every time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from iftscope.models.load import check_length, context_limit, input_device, pad_token_id


def left_pad(prompts: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of a batch of prompts padded on the left to the longest."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


@torch.no_grad()
def generate_batched(
    model,
    tokenizer,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    batch_size: int = 64,
    seed: int | None = None,
    **sampling,
) -> list[list[int]]:
    """Per prompt (token ids): the ids generated after it, EOS and trailing padding included.

    `sampling` goes to `model.generate` (do_sample, temperature, top_k ...). With `seed`, torch's
    generator is seeded before each batch with seed x 1_000_003 + the batch's first index, so a
    batch's samples depend on the seed and its own prompts only. A prompt that leaves no room for
    `max_new_tokens` in the model's context is a ValueError before anything runs. Inputs go to the
    input embeddings' device, so a model spread by a device map (`load_model(device="map")`) works."""
    pad = pad_token_id(tokenizer)
    limit = context_limit(model, tokenizer)
    for prompt in prompts:
        check_length(prompt, limit, tokenizer, room=max_new_tokens)
    device = input_device(model)
    model.eval()
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = left_pad(prompts[start : start + batch_size], pad)
        if seed is not None:
            torch.manual_seed(seed * 1_000_003 + start)
        gen = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
        out += gen[:, ids.shape[1] :].tolist()
    return out
