"""Pretrain the micro-world's base model on the known people's biographies only.

Each step's batch is a pure function of (seed, step), so resuming from a checkpoint replays
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from iftscope.microworld.generator import ATTRIBUTES, FactPrompt, Person
from iftscope.microworld.lexicon import ASIDES, OPENERS, TEMPLATES
from iftscope.microworld.recall import recall
from iftscope.runs import atomic_dir, read_jsonl

if TYPE_CHECKING:  # torch loads in the functions that train: the recipe check imports the config only
    import torch


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 2000  # pretraining steps
    batch_size: int = 16  # biographies per step
    seq_len: int = 128  # tokens per biography window
    # Measured on the default world (bench/results/world_design.md): lr 5e-3 stores the facts fast;
    # 2e-3 stored far less in the budget and 1e-2 was unstable. Without weight decay and
    # decoration, recall in new wording peaked mid-training and then fell as the model memorised
    # the training sentences as strings (seed 2: 0.45 at step 750, 0.24 at the end); weight decay
    # 0.1 and decorated sentences kept it (0.93).
    lr: float = 5e-3
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    # Probability that a sentence starting with the name gets an opener before it or an aside after it.
    decorate: float = 0.5
    eval_every: int = 250  # recall on a sample of known facts, shown in the progress bar
    checkpoint_every: int = 250

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BiographySampler:
    """Packs freshly paraphrased biographies into fixed-length token windows."""

    def __init__(self, people: list[Person], tokenizer, seed: int, decorate: float = 0.0):
        self.people = [p for p in people if p.known]
        self.seed = seed
        self.decorate = decorate
        encode = lambda t: tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
        self.openers = [encode(t) for t in OPENERS]
        self.asides = [encode(t) for t in ASIDES]
        self.name_len = {p.id: len(encode(p.name)) for p in self.people}
        self.bos, self.eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        # Word-level tokens: a biography's ids are the concatenation of its sentences' ids.
        # (ids, starts with the name) per paraphrase
        self.sentence_ids = {
            (p.id, a): [
                (encode(t.format(name=p.name, value=p.facts[a])), t.startswith("{name}"))
                for t in TEMPLATES[a]
            ]
            for p in self.people
            for a in ATTRIBUTES
        }

    def biography_ids(self, person: Person, rng: random.Random) -> list[int]:
        attrs = list(ATTRIBUTES)
        rng.shuffle(attrs)
        ids = [self.bos]
        for a in attrs:
            sentence, name_first = rng.choice(self.sentence_ids[(person.id, a)])
            if self.decorate and name_first and rng.random() < self.decorate:
                n = self.name_len[person.id]
                if rng.random() < 0.5:
                    sentence = rng.choice(self.openers) + sentence
                else:
                    sentence = sentence[:n] + rng.choice(self.asides) + sentence[n:]
            ids += sentence
        return ids + [self.eos]

    def batch(self, step: int, batch_size: int, seq_len: int) -> torch.Tensor:
        import torch

        rng = random.Random(f"pretrain-{self.seed}-{step}")
        need, stream = batch_size * seq_len, []
        while len(stream) < need:
            stream += self.biography_ids(rng.choice(self.people), rng)
        return torch.tensor(stream[:need], dtype=torch.long).view(batch_size, seq_len)


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int, log: list[dict]) -> None:
    import torch
    from safetensors.torch import save_model

    with atomic_dir(path) as tmp:
        save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step},
            tmp / "trainer_state.pt",
        )
        (tmp / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")


def _load_checkpoint(path: Path, model, optimizer, scheduler) -> tuple[int, list[dict]]:
    import torch
    from safetensors.torch import load_model

    load_model(model, str(path / "model.safetensors"))
    trainer = torch.load(path / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    return trainer["step"], read_jsonl(path / "log.jsonl")


def pretrain(
    model,
    tokenizer,
    people: list[Person],
    cfg: PretrainConfig,
    seed: int,
    checkpoint_dir: Path,
    monitor: list[FactPrompt],
    progress: bool = True,
) -> dict[str, Any]:
    """Train in place; resume from `checkpoint_dir` if a checkpoint is there. Returns stats.
    Recall on the `monitor` facts is measured every `eval_every` steps (log and progress bar)."""
    import torch

    sampler = BiographySampler(people, tokenizer, seed, cfg.decorate)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95)
    )
    from transformers import get_cosine_schedule_with_warmup  # here: importing it costs seconds

    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup, cfg.steps)
    start, log = 0, []
    if (checkpoint_dir / "trainer_state.pt").exists():
        start, log = _load_checkpoint(checkpoint_dir, model, optimizer, scheduler)
    bar = tqdm(
        total=cfg.steps, initial=start, desc="pretrain", unit="step", disable=not progress, dynamic_ncols=True
    )
    train_seconds, tokens, t_wall = 0.0, 0, time.perf_counter()
    recall_now = None
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        batch = sampler.batch(step, cfg.batch_size, cfg.seq_len)
        loss = _step(model, optimizer, scheduler, batch, cfg.grad_clip)
        train_seconds += time.perf_counter() - t0
        tokens += batch.numel()
        row = {"step": step + 1, "loss": round(loss, 4), "lr": scheduler.get_last_lr()[0]}
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            hits = recall(model, tokenizer, monitor)
            recall_now = sum(hits) / len(hits)
            row["recall_known_sample"] = round(recall_now, 4)
        log.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", recall="-" if recall_now is None else f"{recall_now:.2f}")
        bar.update(1)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, step + 1, log)
    bar.close()
    return _stats(cfg, start, log, time.perf_counter() - t_wall, train_seconds, tokens)


def _step(model, optimizer, scheduler, batch: torch.Tensor, grad_clip: float) -> float:
    """One optimiser step of next-token prediction on `batch`; its loss before the step."""
    import torch

    model.train()
    loss = model(input_ids=batch, labels=batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _stats(
    cfg: PretrainConfig, start: int, log: list[dict], seconds: float, train_seconds: float, tokens: int
) -> dict[str, Any]:
    """pretrain/stats.json (less the parameter count) and the log: wall and training time,
    throughput, where the run resumed and its final loss."""
    return {
        "steps": cfg.steps,
        "resumed_from_step": start,
        "seconds": round(seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "tokens": tokens,
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else math.nan,
        "final_loss": log[-1]["loss"] if log else None,
        "log": log,
    }
