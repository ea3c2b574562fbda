"""Generation mode: what a tuned model *says*, and where its tokens moved away from the base model.

- greedy answers, parsed against the options (their text, or their letter when the prompt listed
  them): exact-match accuracy and the rate at which responses follow the trained format;
- token distribution shift (URIAL, Lin et al. 2023): at each position of the tuned model's response
  the token's rank under the base model given the same prefix: unshifted (rank 1), marginal (2-3) or
  shifted (> 3), split into the answer token and the rest. Does IFT move knowledge or style?
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from iftscope.models.generate import generate_batched
from iftscope.models.load import pad_token_id
from iftscope.types import LETTERS, Question

_LETTER_ANSWER = re.compile(r"\(?([A-Z])(?:[.):]\s*(.*)|\s*)", re.S)  # 'C', 'C.', 'C. text', '(C)'


def parse_answer(response: str, choices: Sequence[str], letters: bool = True) -> tuple[int | None, bool]:
    """(option index or None, follows the format). An answer that starts with an option's text
    follows it; with `letters` (the options were shown), so does an option's letter alone or
    followed by that option's text ('C', 'C.', 'C. text'); a letter followed by another text
    still answers with the letter, out of format. Else a text naming exactly one option."""
    text = response.strip()
    for i, c in sorted(enumerate(choices), key=lambda x: -len(x[1])):  # longest first: no prefix clash
        if re.match(rf"{re.escape(c.strip())}(?!\w)", text):
            return i, True
    m = _LETTER_ANSWER.fullmatch(text) if letters else None
    if m and LETTERS.index(m.group(1)) < len(choices):
        i, rest = LETTERS.index(m.group(1)), (m.group(2) or "").strip()
        return i, not rest or re.match(rf"{re.escape(choices[i].strip())}(?!\w)", rest) is not None
    hits = [i for i, c in enumerate(choices) if re.search(rf"(?<!\w){re.escape(c.strip())}(?!\w)", text)]
    return (hits[0] if len(hits) == 1 else None), False


@torch.no_grad()
def greedy(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 16, batch_size: int = 64):
    """Per prompt: (prompt ids, generated ids up to and excluding EOS)."""
    pad, eos = pad_token_id(tokenizer), tokenizer.eos_token_id
    enc = [tokenizer(p)["input_ids"] for p in prompts]
    rows = generate_batched(model, tokenizer, enc, max_new_tokens, batch_size, do_sample=False)
    out = []
    for e, row in zip(enc, rows, strict=True):
        cut = row.index(eos) if eos in row else len(row)
        out.append((e, [t for t in row[:cut] if t != pad]))
    return out


@torch.no_grad()
def base_ranks(base_model, prompt: list[int], response: list[int]) -> list[int]:
    """Rank (1 = top) of each response token under the base model, given the same prefix."""
    return batch_base_ranks(base_model, [(prompt, response)])[0]


@torch.no_grad()
def batch_base_ranks(
    base_model, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = 64, pad: int = 0
) -> list[list[int]]:
    """base_ranks for many (prompt, response) pairs, right-padded batches. The base model's logits
    are computed in float32 at the response positions only (models.head.OutputHead): a bf16 head's
    exact ties would count a shifted token as unshifted."""
    from iftscope.models.head import OutputHead
    from iftscope.models.load import input_device

    head, device = OutputHead(base_model), input_device(base_model)
    out: list[list[int]] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seqs = [p + r for p, r in chunk]
        width = max(len(x) for x in seqs)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x in seqs], device=device)
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs], device=device)
        states = head.states(ids, mask)
        for row, (p, r) in zip(states, chunk, strict=True):
            if not r:
                out.append([])
                continue
            at = head.logits(row[len(p) - 1 : len(p) - 1 + len(r)])
            chosen = at.gather(1, torch.tensor(r, device=at.device)[:, None])
            out.append((at > chosen).sum(dim=1).add(1).tolist())
    return out


def shift_fractions(ranks: Sequence[int]) -> dict[str, float]:
    n = len(ranks)
    if n == 0:
        return {"n": 0, "unshifted": float("nan"), "marginal": float("nan"), "shifted": float("nan")}
    return {
        "n": n,
        "unshifted": sum(r == 1 for r in ranks) / n,
        "marginal": sum(2 <= r <= 3 for r in ranks) / n,
        "shifted": sum(r > 3 for r in ranks) / n,
    }


def generation_metrics(
    tuned,
    base,
    tokenizer,
    questions: Sequence[Question],
    prompts: Sequence[str],
    max_new_tokens: int = 16,
    letters: bool = False,
) -> dict[str, Any]:
    """Accuracy and format rate of greedy answers, and the token shift against the base model;
    `letters`: the prompts list the options, so 'C. text' answers are parsed by their letter."""
    answers, follows, correct, first, rest, shifted = [], 0, 0, [], [], {}
    by_position: dict[int, list[int]] = {}
    generated = greedy(tuned, tokenizer, prompts, max_new_tokens)
    all_ranks = batch_base_ranks(base, generated, pad=pad_token_id(tokenizer))
    for q, (_, r_ids), ranks in zip(questions, generated, all_ranks, strict=True):
        text = tokenizer.decode(r_ids, skip_special_tokens=True)
        idx, fmt = parse_answer(text, q.choices, letters)
        follows += fmt
        correct += idx == q.answer
        first += ranks[:1]
        rest += ranks[1:]
        for i, r in enumerate(ranks):
            by_position.setdefault(i, []).append(r)
        for tok, r in zip(r_ids, ranks, strict=True):
            if r > 3:
                shifted[tok] = shifted.get(tok, 0) + 1
        answers.append({"id": q.id, "response": text, "parsed": idx})
    top = sorted(shifted.items(), key=lambda x: -x[1])[:15]
    n = max(len(questions), 1)
    return {
        "n": len(questions),
        "accuracy": correct / n,
        "format_rate": follows / n,
        "shift_answer_token": shift_fractions(first),
        "shift_other_tokens": shift_fractions(rest),
        "shift_by_position": [shift_fractions(by_position[i]) for i in sorted(by_position)],
        "most_shifted_tokens": [{"token": tokenizer.decode([t]), "count": c} for t, c in top],
        "samples": answers[:20],
    }
