"""The label mask: loss on the response tokens and EOS only, never on the prompt.

The response is tokenised in its context: prompt + response as one string, split where the prompt
ends (as TRL does for prompt-completion data). Tokenised apart, SentencePiece as Llama-2 ships it
turns " C. text" into a lone '▁▁' then 'C', and "C" glued to "Answer:" into '▁C' where the text in
context has 'C': the model would be taught tokens it never meets. A token that straddles the
boundary (tekken's ':C') belongs to the response, so the loss covers every response character.
"""

from __future__ import annotations

from collections.abc import Sequence

IGNORE = -100  # what torch's cross-entropy skips


def split_at_prompt(tokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) of `prompt + response` tokenised as one text, with the tokenizer's
    own special tokens (BOS where it adds one); the response ids start at the first token that
    reaches past the prompt's last character. A tokenizer-added EOS is dropped (the caller adds
    EOS once)."""
    text = prompt + response
    try:
        enc = tokenizer(text, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        ends = [end for _, end in enc["offset_mapping"]]
        cut = next((i for i, end in enumerate(ends) if end > len(prompt)), len(ids))
    except NotImplementedError:  # a slow tokenizer has no offsets: where the prompt alone differs
        ids = list(tokenizer(text)["input_ids"])
        alone = tokenizer(prompt)["input_ids"]
        cut = next((i for i, (a, b) in enumerate(zip(alone, ids, strict=False)) if a != b), len(alone))
    prompt_ids, response_ids = ids[:cut], ids[cut:]
    eos, eos_text = tokenizer.eos_token_id, tokenizer.eos_token or "\0"
    if response_ids and response_ids[-1] == eos and not response.endswith(eos_text):
        response_ids = response_ids[:-1]
    return prompt_ids, response_ids


def tokenize_example(tokenizer, prompt: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one SFT example, the response tokenised in context (see the module)."""
    prompt_ids, response_ids = split_at_prompt(tokenizer, prompt, response)
    bos = tokenizer.bos_token_id
    keep = 1 if bos is not None and prompt_ids[:1] == [bos] else 0
    return build_example(prompt_ids, response_ids, tokenizer.eos_token_id, max_length, keep=keep)


def build_example(
    prompt_ids: Sequence[int], response_ids: Sequence[int], eos_id: int, max_length: int, keep: int = 0
) -> tuple[list[int], list[int]]:
    """(input_ids, labels). Too long: the prompt loses tokens from its left, never the response;
    its first `keep` tokens (a BOS) stay in front."""
    if not response_ids:
        raise ValueError("empty response: nothing to learn")
    response = [*response_ids, eos_id]
    if len(response) + keep >= max_length:
        raise ValueError(f"response of {len(response)} tokens does not fit max_length {max_length}")
    room = max_length - len(response) - keep  # > 0
    prompt = list(prompt_ids[:keep]) + list(prompt_ids[keep:])[-room:]
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
