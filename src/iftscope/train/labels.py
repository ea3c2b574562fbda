"""The label mask: loss on the response tokens and EOS only, never on the prompt."""

from __future__ import annotations

from collections.abc import Sequence

IGNORE = -100  # what torch's cross-entropy skips


def build_example(
    prompt_ids: Sequence[int], response_ids: Sequence[int], eos_id: int, max_length: int
) -> tuple[list[int], list[int]]:
    """(input_ids, labels). Too long: the prompt loses tokens from its left, never the response."""
    if not response_ids:
        raise ValueError("empty response: nothing to learn")
    response = [*response_ids, eos_id]
    if len(response) >= max_length:
        raise ValueError(f"response of {len(response)} tokens does not fit max_length {max_length}")
    prompt = list(prompt_ids)[-(max_length - len(response)) :]
    return prompt + response, [IGNORE] * len(prompt) + response


def pad_batch(
    rows: Sequence[tuple[list[int], list[int]]], pad_id: int
) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Right-padded input ids, labels (padding ignored) and attention mask."""
    width = max(len(ids) for ids, _ in rows)
    ids = [r[0] + [pad_id] * (width - len(r[0])) for r in rows]
    labels = [r[1] + [IGNORE] * (width - len(r[1])) for r in rows]
    mask = [[1] * len(r[0]) + [0] * (width - len(r[0])) for r in rows]
    return ids, labels, mask
