"""The one narrow door to a model: letter distributions and continuation log-likelihoods.

Probe, evaluation and analysis code depend only on the `Scorer` protocol, so their tests use a
fake and need no model. Every softmax here is computed in float32, whatever the model's dtype
(the paper's bf16 logits tied 11% of its option distributions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class LetterScores:
    """Log-probabilities (full-vocabulary softmax) of the scored tokens at the next position."""

    logprobs: np.ndarray  # [n_prompts, n_tokens]

    @property
    def mass(self) -> np.ndarray:
        """Probability the model put on the scored tokens at all (a sanity check)."""
        return np.exp(self.logprobs).sum(axis=1)

    @property
    def distribution(self) -> np.ndarray:
        """Softmax over the scored tokens only."""
        z = self.logprobs - self.logprobs.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ContinuationScore:
    logprob: float  # summed over the continuation's tokens
    tokens: int
    chars: int


class Scorer(Protocol):
    def single_token_id(self, context: str, text: str) -> int: ...

    def letter_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> LetterScores: ...

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[ContinuationScore]: ...


class HFScorer:
    """Scorer over a Hugging Face causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, batch_size: int = 32, add_bos: bool | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        # BOS as the tokenizer adds it by default unless told otherwise; recorded by callers.
        self.add_bos = (
            add_bos
            if add_bos is not None
            else bool(tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id])
        )
        self.device = next(model.parameters()).device

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [self.tokenizer.bos_token_id, *ids] if self.add_bos else ids

    def single_token_id(self, context: str, text: str) -> int:
        """The one token that `text` becomes right after `context` (as the format writes it)."""
        before, after = self.encode(context), self.encode(context + text)
        if after[: len(before)] != before or len(after) != len(before) + 1:
            pieces = self.tokenizer.convert_ids_to_tokens(after[len(before) - 1 :])
            raise ValueError(f"{text!r} after {context[-20:]!r} is not one token here: {pieces}")
        return after[-1]

    @torch.no_grad()
    def _final_logprobs(self, sequences: list[list[int]]) -> list[torch.Tensor]:
        """Per sequence: float32 log-softmax over the vocabulary at every position."""
        out: list[torch.Tensor] = []
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(sequences), self.batch_size):
            chunk = sequences[start : start + self.batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, s in enumerate(chunk):
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            out += [logp[i, : len(s)] for i, s in enumerate(chunk)]
        return out

    def letter_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> LetterScores:
        seqs = [self.encode(p) for p in prompts]
        idx = torch.tensor(list(token_ids))
        rows = [lp[-1, idx].numpy() for lp in self._final_logprobs(seqs)]
        return LetterScores(np.stack(rows).astype(np.float64))

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[ContinuationScore]:
        """lm-evaluation-harness style: context and continuation encoded together, then split."""
        seqs, spans = [], []
        for context, continuation in pairs:
            stripped = context.rstrip()
            continuation = context[len(stripped) :] + continuation  # trailing space moves over
            whole, ctx = self.encode(stripped + continuation), self.encode(stripped)
            if not ctx:
                raise ValueError("empty context: nothing to condition the continuation on")
            seqs.append(whole)
            spans.append((len(ctx), len(whole), len(continuation)))
        scores = []
        for lp, seq, (a, b, chars) in zip(self._final_logprobs(seqs), seqs, spans, strict=True):
            targets = torch.tensor(seq[a:b])
            total = lp[a - 1 : b - 1].gather(1, targets[:, None]).sum().item()
            scores.append(ContinuationScore(total, b - a, chars))
        return scores
