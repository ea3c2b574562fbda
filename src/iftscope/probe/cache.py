"""On-disk score cache: a rerun of a probe or an evaluation is free.

Keys are the model's identity (contents of its weights, tokenizer and adapter; see
models.identity) plus the exact prompt text and scored tokens, so a cached score can only ever be
served to the model that produced it. One SQLite file; writes are transactions, so a crash leaves
no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iftscope.models.scorer import ContinuationScore, LetterScores, Scorer

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("IFTSCOPE_CACHE", Path.home() / ".cache" / "iftscope"))


class CachedScorer:
    """A Scorer that answers from the cache and asks the wrapped scorer only for misses."""

    def __init__(self, inner: Scorer, identity: str, cache_dir: str | Path | None = None):
        self.inner, self.identity = inner, identity
        folder = Path(cache_dir) if cache_dir else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "scores.sqlite"
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = self.misses = 0

    def _key(self, kind: str, payload: object) -> str:
        text = json.dumps([CACHE_VERSION, self.identity, kind, payload], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def _lookup(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT key, value FROM scores WHERE key IN ({marks})", chunk))
        return found

    def _store(self, items: dict[str, str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)", items.items())

    def single_token_id(self, context: str, text: str) -> int:
        return self.inner.single_token_id(context, text)

    def letter_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> LetterScores:
        ids = [int(t) for t in token_ids]
        keys = [self._key("letter", [p, ids]) for p in prompts]
        found = self._lookup(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.letter_logprobs([prompts[i] for i in missing], ids).logprobs
            new = {keys[i]: json.dumps(row.tolist()) for i, row in zip(missing, fresh, strict=True)}
            self._store(new)
            found.update(new)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return LetterScores(np.array([json.loads(found[k]) for k in keys], dtype=np.float64))

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[ContinuationScore]:
        keys = [self._key("continuation", list(p)) for p in pairs]
        found = self._lookup(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.continuation_logprobs([pairs[i] for i in missing])
            new = {
                keys[i]: json.dumps([s.logprob, s.tokens, s.chars])
                for i, s in zip(missing, fresh, strict=True)
            }
            self._store(new)
            found.update(new)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return [ContinuationScore(*json.loads(found[k])) for k in keys]
