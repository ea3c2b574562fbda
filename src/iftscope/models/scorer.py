"""The one narrow door to a model: letter distributions and continuation log-likelihoods.

Probe, evaluation and analysis code depend only on the `Scorer` protocol, so their tests use a
fake and need no model. Logits at the scored positions and every softmax are computed in float32,
whatever the model's dtype (the paper's bf16 logits tied 11% of its option distributions; see
models.head), and `LetterScores.tied` tells which rows still tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from iftscope.models.head import OutputHead
from iftscope.models.load import check_length, context_limit, input_device, pad_token_id


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

    @property
    def tied(self) -> np.ndarray:
        """Per row: its two highest scored log-probabilities are exactly equal, so its argmax is
        the first option by convention, not by the model. Callers report the rate (`tie_rate`)."""
        if self.logprobs.shape[1] < 2:
            return np.zeros(len(self.logprobs), dtype=bool)
        top = np.sort(self.logprobs, axis=1)[:, -2:]
        return top[:, 0] == top[:, 1]

    @property
    def tie_rate(self) -> float:
        return float(self.tied.mean()) if len(self.logprobs) else 0.0


@dataclass(frozen=True)
class ContinuationScore:
    logprob: float  # summed over the continuation's tokens
    tokens: int
    chars: int


class Scorer(Protocol):
    def single_token_id(self, context: str, text: str) -> int: ...

    def letter_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> LetterScores: ...

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[ContinuationScore]: ...


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class HFScorer:
    """Scorer over a Hugging Face causal LM and its tokenizer (its logits at the scored positions
    in float32: see `OutputHead`)."""

    def __init__(
        self, model, tokenizer, batch_size: int = 32, add_bos: bool | None = None, min_shared: int = 64
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.min_shared = min_shared  # shorter shared prefixes are not worth a separate pass; 0: never
        self.head = OutputHead(model)
        # BOS as the tokenizer adds it by default unless told otherwise; recorded by callers.
        self.add_bos = (
            add_bos
            if add_bos is not None
            else bool(tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id])
        )
        self.device = input_device(model)
        self.limit = context_limit(model, tokenizer)

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [self.tokenizer.bos_token_id, *ids] if self.add_bos else ids

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode` of every text in one tokenizer call: the same ids, without a Python round
        trip per string (a fast tokenizer encodes the batch in Rust; profiled at a fifth of a tuned
        model's evaluation on the micro-world when done one string at a time)."""
        if not texts:
            return []
        rows = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        bos = [self.tokenizer.bos_token_id] if self.add_bos else []
        return [[*bos, *ids] for ids in rows]

    def single_token_id(self, context: str, text: str) -> int:
        """The one token that `text` becomes right after `context` (as the format writes it)."""
        before, after = self.encode(context), self.encode(context + text)
        if after[: len(before)] != before or len(after) != len(before) + 1:
            pieces = self.tokenizer.convert_ids_to_tokens(after[len(before) - 1 :])
            raise ValueError(f"{text!r} after {context[-20:]!r} is not one token here: {pieces}")
        return after[-1]

    def _groups(self, sequences: list[list[int]], starts: list[int]) -> list[tuple[int, list[int]]]:
        """Batches: runs of sequences that share a long token prefix (encoded once; never past the
        first position whose output is needed), then the rest packed by length."""
        order = sorted(range(len(sequences)), key=lambda i: sequences[i])
        runs: list[tuple[int, list[int]]] = []
        for i in order:
            if runs and len(runs[-1][1]) < self.batch_size:
                shared, members = runs[-1]
                common = min(shared, starts[i], _common_prefix(sequences[members[0]], sequences[i]))
                if self.min_shared and common >= self.min_shared:
                    runs[-1] = (common, members + [i])
                    continue
            runs.append((starts[i], [i]))
        batches = [(shared, m) for shared, m in runs if len(m) > 1]
        rest = sorted((m[0] for _, m in runs if len(m) == 1), key=lambda i: len(sequences[i]))
        batches += [(0, rest[k : k + self.batch_size]) for k in range(0, len(rest), self.batch_size)]
        return batches

    @torch.no_grad()
    def _logprob_rows(self, sequences: list[list[int]], starts: list[int]) -> list[torch.Tensor]:
        """Per sequence: float32 log-softmax over the vocabulary at positions starts[i]..end.

        Runs that share a prefix (a k-shot header, a cloze statement scored with 4 options) encode
        it once and reuse its key/value cache; the rest is batched right-padded, so positions and
        causal attention are those of each sequence alone. Only the scored positions go through
        the output head, in float32."""
        for seq in sequences:
            check_length(seq, self.limit, self.tokenizer)
        out: list[torch.Tensor | None] = [None] * len(sequences)
        pad = pad_token_id(self.tokenizer)
        for shared, members in self._groups(sequences, starts):
            cache = None
            if shared:
                prefix = torch.tensor([sequences[members[0]][:shared]], device=self.device)
                cache = self.head.prefix_cache(prefix)
                cache.batch_repeat_interleave(len(members))
            tails = [sequences[i][shared:] for i in members]
            width = max(len(t) for t in tails)
            ids = torch.full((len(tails), width), pad, dtype=torch.long)
            mask = torch.zeros((len(tails), shared + width), dtype=torch.long)
            mask[:, :shared] = 1
            for j, t in enumerate(tails):
                ids[j, : len(t)] = torch.tensor(t)
                mask[j, shared : shared + len(t)] = 1
            states = self.head.states(ids.to(self.device), mask.to(self.device), cache)
            spans = [(starts[i] - shared, len(tails[j])) for j, i in enumerate(members)]
            picked = torch.cat([states[j, a:b] for j, (a, b) in enumerate(spans)])
            rows = torch.log_softmax(self.head.logits(picked), dim=-1).cpu()
            for i, part in zip(members, rows.split([b - a for a, b in spans]), strict=True):
                out[i] = part
        return out  # type: ignore[return-value]

    def letter_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> LetterScores:
        seqs = self.encode_many(prompts)
        idx = torch.tensor(list(token_ids))
        rows = [lp[-1, idx].numpy() for lp in self._logprob_rows(seqs, [len(s) - 1 for s in seqs])]
        return LetterScores(np.stack(rows).astype(np.float64))

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[ContinuationScore]:
        """lm-evaluation-harness style: context and continuation encoded together, then split."""
        stripped = [context.rstrip() for context, _ in pairs]
        # the trailing space moves over to the continuation
        moved = [c[len(s) :] + cont for s, (c, cont) in zip(stripped, pairs, strict=True)]
        contexts = dict.fromkeys(stripped)  # options of one question share their context
        ctx_ids = dict(zip(contexts, self.encode_many(list(contexts)), strict=True))
        seqs = self.encode_many([s + m for s, m in zip(stripped, moved, strict=True)])
        spans = []
        for s, m, whole in zip(stripped, moved, seqs, strict=True):
            if not ctx_ids[s]:
                raise ValueError("empty context: nothing to condition the continuation on")
            spans.append((len(ctx_ids[s]), len(whole), len(m)))
        # A one-token continuation needs only its context's last output: options that share a
        # context (a cloze statement and its four single-word values) share one sequence.
        unique: dict[tuple[int, ...], int] = {}
        todo: list[list[int]] = []
        starts: list[int] = []
        where = []
        for seq, (a, b, _) in zip(seqs, spans, strict=True):
            key = tuple(seq[:a]) if b - a == 1 else tuple(seq)
            if b - a != 1 or key not in unique:
                unique.setdefault(key, len(todo))
                todo.append(seq[:a] if b - a == 1 else seq)
                starts.append(a - 1)
            where.append(unique[key] if b - a == 1 else len(todo) - 1)
        rows = self._logprob_rows(todo, starts)
        scores = []
        for i, seq, (a, b, chars) in zip(where, seqs, spans, strict=True):
            targets = torch.tensor(seq[a:b])
            total = rows[i][: b - a].gather(1, targets[:, None]).sum().item()
            scores.append(ContinuationScore(total, b - a, chars))
        return scores


class TieCount:
    """A scorer that counts its letter scorings whose top options tie exactly (`tie_rate`): the
    argmax of a tied row is the first option by convention, not the model's choice. Everything
    else is the wrapped scorer's."""

    def __init__(self, scorer: Scorer):
        self.scorer, self.rows, self.tied = scorer, 0, 0

    def __getattr__(self, name: str):
        return getattr(self.scorer, name)

    def letter_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> LetterScores:
        scores = self.scorer.letter_logprobs(prompts, token_ids)
        self.rows, self.tied = self.rows + len(scores.logprobs), self.tied + int(scores.tied.sum())
        return scores

    @property
    def tie_rate(self) -> float | None:
        """Tied rows / letter rows scored; None when nothing was scored by letter."""
        return self.tied / self.rows if self.rows else None
