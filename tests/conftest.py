"""Shared fixtures: a tiny world and a 2-layer model built on the spot (well under a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iftscope.data.microworld import WorldConfig, make_people, make_questions, vocabulary
from iftscope.models.pretrain import PretrainConfig
from iftscope.models.tiny import TinyModelConfig, build_model
from iftscope.models.tokenizer import build_word_tokenizer
from iftscope.world import WorldStageConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY_MODEL = TinyModelConfig(hidden=32, layers=2, heads=2, mlp=64, max_positions=128)


@pytest.fixture(scope="session")
def tokenizer():
    return build_word_tokenizer(vocabulary())


@pytest.fixture(scope="session")
def tiny_world():
    cfg = WorldConfig(seed=3, people=20, unknown=10)
    people = make_people(cfg)
    return cfg, people, make_questions(people, cfg)


@pytest.fixture
def tiny_model(tokenizer):
    return build_model(
        TINY_MODEL,
        len(tokenizer),
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        seed=0,
    )


def tiny_stage_config(steps: int = 12, seed: int = 3) -> WorldStageConfig:
    return WorldStageConfig(
        world=WorldConfig(seed=seed, people=20, unknown=10),
        model=TINY_MODEL,
        pretrain=PretrainConfig(
            steps=steps, batch_size=4, seq_len=32, warmup=2, eval_every=5, checkpoint_every=5
        ),
    )


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
