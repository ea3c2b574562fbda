"""The `world` stage: generate the micro-world, pretrain its base model, measure what it knows.

Layout of the world folder (paths in summary.json are relative to it):
  config.json        world, model and pretraining configs and their fingerprint
  people.jsonl       every person, known or not, with facts and split
  questions.jsonl    one multiple-choice question per person and attribute (paper JSONL format)
  model/             Hugging Face model folder (safetensors) with its tokenizer
  pretrain/          log.jsonl and stats.json; checkpoint/ while training is unfinished
  recall.jsonl       per fact: recalled in most held-back paraphrases? (ground truth of knowing)
  large/             only with `large` set: a second, larger base model pretrained on the same
                     people (model/, pretrain/, recall.jsonl, summary.json), proxy-tuning's M
  summary.json       written last: its presence means the stage is done
A finished world with the same fingerprint is reused; an unfinished one resumes.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iftscope.microworld.generator import (
    SPLITS,
    Person,
    WorldConfig,
    chance_level,
    fact_prompts,
    make_people,
    make_questions,
    vocabulary,
)
from iftscope.microworld.pretrain import PretrainConfig, pretrain
from iftscope.microworld.recall import recall, recall_summary
from iftscope.microworld.tiny import TinyModelConfig, build_model, count_parameters
from iftscope.runs import atomic_dir, atomic_write_json, atomic_write_jsonl, fingerprint, read_json
from iftscope.types import Question
from iftscope.version import __version__

# Bump when generation or training changes so that old worlds are not silently reused.
WORLD_FORMAT = 5


@dataclass(frozen=True)
class WorldStageConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    large: TinyModelConfig | None = None  # a second, larger base on the same people (proxy-tuning's M)

    def to_json(self) -> dict[str, Any]:
        out = {
            "format": WORLD_FORMAT,
            "world": self.world.to_json(),
            "model": self.model.to_json(),
            "pretrain": self.pretrain.to_json(),
        }
        if self.large is not None:  # absent when off: a world without it keeps its fingerprint
            out["large"] = self.large.to_json()
        return out

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.to_json())


class WorldMismatchError(ValueError):
    pass


def _claim_folder(out: Path, cfg: WorldStageConfig, force: bool) -> dict[str, Any] | None:
    """Return the finished summary to reuse, or prepare `out` for (re)building."""
    config_path = out / "config.json"
    if config_path.exists():
        old = read_json(config_path)
        if old.get("fingerprint") != cfg.fingerprint:
            if not force:
                raise WorldMismatchError(
                    f"{out} holds a world built with another config (fingerprint "
                    f"{old.get('fingerprint')}, now {cfg.fingerprint}); choose another --out or pass --force"
                )
            shutil.rmtree(out)
        elif (out / "summary.json").exists():
            return read_json(out / "summary.json")
    elif out.exists() and any(out.iterdir()):
        raise WorldMismatchError(f"{out} exists and is not a world folder; choose another --out")
    atomic_write_json(config_path, {**cfg.to_json(), "fingerprint": cfg.fingerprint})
    return None


def per_fact_recall(facts: list, hits: list[bool]) -> list[dict[str, Any]]:
    """Ground truth for later stages: a fact is known if recalled in most held-back paraphrases."""
    rows: dict[str, dict[str, Any]] = {}
    for f, h in zip(facts, hits, strict=True):
        row = rows.setdefault(
            f"{f.person}-{f.attribute}",
            {"known_person": f.known, "paraphrases": 0, "paraphrases_recalled": 0},
        )
        row["paraphrases"] += 1
        row["paraphrases_recalled"] += int(h)
    return [
        {"question_id": qid, **r, "recalled": 2 * r["paraphrases_recalled"] > r["paraphrases"]}
        for qid, r in rows.items()
    ]


def build_world(
    out: str | Path, cfg: WorldStageConfig | None = None, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the stage (or reuse its result) and return the summary."""
    from iftscope.microworld.tokenizer import build_word_tokenizer  # transformers: only to build

    cfg = cfg or WorldStageConfig()
    out = Path(out)
    t0 = time.perf_counter()
    if (done := _claim_folder(out, cfg, force)) is not None:
        return {**done, "reused": True}
    people, questions = _write_people_and_questions(out, cfg.world)
    tokenizer = build_word_tokenizer(vocabulary())
    model, stats = _pretrained_model(out, cfg.model, cfg, people, tokenizer, progress)
    memorisation = _measure_recall(out, model, tokenizer, people)
    if cfg.large is not None:
        _large_model(out / "large", cfg, people, tokenizer, progress)
    summary = _summary(cfg, memorisation, stats, questions, time.perf_counter() - t0)
    atomic_write_json(out / "summary.json", summary)
    return {**summary, "reused": False}


def _write_people_and_questions(out: Path, world: WorldConfig) -> tuple[list[Person], list[Question]]:
    """The world's people and questions (a pure function of its config), written once."""
    people = make_people(world)
    questions = make_questions(people, world)
    if not (out / "questions.jsonl").exists():
        atomic_write_jsonl(out / "people.jsonl", (p.to_json() for p in people))
        atomic_write_jsonl(out / "questions.jsonl", (q.to_json() for q in questions))
    return people, questions


def _pretrained_model(
    out: Path, arch: TinyModelConfig, cfg: WorldStageConfig, people: list[Person], tokenizer, progress: bool
) -> tuple[Any, dict[str, Any]]:
    """(model of architecture `arch`, pretraining stats) under `out`: loaded when an earlier run
    saved both before it crashed, else trained (resuming from pretrain/checkpoint) on the world's
    people with cfg.pretrain and saved to model/ with its tokenizer."""
    model_dir, stats_path = out / "model", out / "pretrain" / "stats.json"
    if (model_dir / "model.safetensors").exists() and stats_path.exists():  # crashed after training
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model_dir), read_json(stats_path)
    seed = cfg.world.seed
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    model = build_model(arch, len(tokenizer), *ids, seed)
    known = [f for f in fact_prompts(people) if f.known]
    monitor = random.Random(f"monitor-{seed}").sample(known, min(200, len(known)))
    checkpoint = out / "pretrain" / "checkpoint"
    stats = pretrain(model, tokenizer, people, cfg.pretrain, seed, checkpoint, monitor, progress=progress)
    atomic_write_jsonl(out / "pretrain" / "log.jsonl", stats.pop("log"))
    stats["parameters"] = count_parameters(model)
    atomic_write_json(stats_path, stats)
    with atomic_dir(model_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return model, stats


def _large_model(out: Path, cfg: WorldStageConfig, people: list[Person], tokenizer, progress: bool) -> None:
    """The second, larger base model (`cfg.large`) on the same people with the same pretraining,
    and its recall, in large/ (model/, pretrain/, recall.jsonl, summary.json written last)."""
    if (out / "summary.json").exists():
        return
    t0 = time.perf_counter()
    model, stats = _pretrained_model(out, cfg.large, cfg, people, tokenizer, progress)
    memorisation = _measure_recall(out, model, tokenizer, people)
    summary = {"model": cfg.large.to_json(), "memorisation": memorisation, "pretrain": stats}
    atomic_write_json(out / "summary.json", {**summary, "seconds": round(time.perf_counter() - t0, 2)})


def _measure_recall(out: Path, model, tokenizer, people: list[Person]) -> dict[str, Any]:
    """Recall of every fact in the held-back paraphrases (per fact to recall.jsonl, the ground
    truth of later stages) and in the training templates, summarised for summary.json."""
    import torch  # here: the recipe check imports WorldStageConfig, not torch

    with torch.no_grad():
        facts = fact_prompts(people, held_out=True)
        hits = recall(model, tokenizer, facts)
        held_out = recall_summary(facts, hits)
        train_facts = fact_prompts(people, held_out=False)
        in_template = recall_summary(train_facts, recall(model, tokenizer, train_facts))
    atomic_write_jsonl(out / "recall.jsonl", per_fact_recall(facts, hits))
    return {
        "known": held_out["known"],
        "unknown": held_out["unknown"],
        "known_train_template": in_template["known"],
        "unknown_train_template": in_template["unknown"],
        "per_attribute": {k: v for k, v in held_out.items() if "." in k},
        "how": "greedy next word after a fact prompt, in three paraphrases held back from pretraining",
    }


def _summary(
    cfg: WorldStageConfig,
    memorisation: dict[str, Any],
    stats: dict[str, Any],
    questions: list[Question],
    seconds: float,
) -> dict[str, Any]:
    """summary.json: config, what the model memorised against chance, counts and relative paths."""
    return {
        "iftscope_version": __version__,
        "fingerprint": cfg.fingerprint,
        "config": cfg.to_json(),
        "memorisation": memorisation,
        "chance": chance_level(),
        "chance_multiple_choice": chance_level(cfg.world.options),
        "pretrain": stats,
        "counts": {
            "people_known": cfg.world.people,
            "people_unknown": cfg.world.unknown,
            "questions": len(questions),
            "questions_per_split": {s: sum(q.metadata["split"] == s for q in questions) for s in SPLITS},
        },
        "paths": {
            "model": "model",
            "tokenizer": "model",
            "questions": "questions.jsonl",
            "people": "people.jsonl",
            "recall": "recall.jsonl",
            "config": "config.json",
        },
        "seconds": round(seconds, 2),
    }
