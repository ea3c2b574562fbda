"""Pretrain the micro-world's base model on the known people's biographies only.

Each step's batch is a pure function of (seed, step), so resuming from a checkpoint replays
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
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
    # Train until recall plateaus (issue 15 item 6; 0 = off, `steps` exactly): after `steps`, while
    # the monitored recall in held-back wording is below `target_recall` and the last round gained
    # at least `min_gain`, train one more round of `extend_steps` (a cosine warm restart from
    # `extend_lr` x lr), at most `max_steps` in all. A seed whose base model falls short gets more
    # training instead of a weaker base model.
    extend_steps: int = 0
    max_steps: int = 6000
    target_recall: float = 0.9
    min_gain: float = 0.01
    extend_lr: float = 0.5

    def __post_init__(self) -> None:
        if self.extend_steps < 0 or (self.extend_steps and self.max_steps < self.steps):
            raise ValueError(
                f"pretrain: extend_steps must be >= 0 and max_steps >= steps, got extend_steps "
                f"{self.extend_steps}, max_steps {self.max_steps}, steps {self.steps}"
            )

    def to_json(self) -> dict[str, Any]:
        """The config; the extension keys only when it is on, so that every world built before
        the option existed keeps its fingerprint."""
        out = asdict(self)
        if not self.extend_steps:
            for key in EXTEND_KEYS:
                del out[key]
        return out


EXTEND_KEYS = ("extend_steps", "max_steps", "target_recall", "min_gain", "extend_lr")


def lr_factor(cfg: PretrainConfig) -> Callable[[int], float]:
    """The learning rate's multiplier at each step: warmup and cosine over `steps` (as transformers'
    cosine schedule), then each extension round a cosine from `extend_lr` to 0 (a warm restart)."""

    def factor(step: int) -> float:
        if step < cfg.warmup:
            return step / max(1, cfg.warmup)
        if step < cfg.steps:  # transformers' formula, operation for operation: worlds stay bit-identical
            progress = float(step - cfg.warmup) / float(max(1, cfg.steps - cfg.warmup))
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        into = (step - cfg.steps) % max(1, cfg.extend_steps)
        return cfg.extend_lr * 0.5 * (1.0 + math.cos(math.pi * into / max(1, cfg.extend_steps)))

    return factor


def planned_end(cfg: PretrainConfig, log: list[dict]) -> int:
    """The step the training runs to: `steps`, plus one round per extension decided in the log."""
    rounds = sum(bool(r.get("extend")) for r in log)
    return min(cfg.steps + rounds * cfg.extend_steps, max(cfg.max_steps, cfg.steps))


def extend(cfg: PretrainConfig, log: list[dict], recall_now: float, end: int) -> bool:
    """At the end of a round: train another? Recall below target, still gaining, room left."""
    if not cfg.extend_steps or recall_now >= cfg.target_recall or end + cfg.extend_steps > cfg.max_steps:
        return False
    ends = [r["recall_known_sample"] for r in log if "extend" in r]  # earlier round ends
    return not ends or recall_now - ends[-1] >= cfg.min_gain


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
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    start, log = 0, []
    if (checkpoint_dir / "trainer_state.pt").exists():
        start, log = _load_checkpoint(checkpoint_dir, model, optimizer, scheduler)
    end = planned_end(cfg, log)
    bar = tqdm(
        total=end, initial=start, desc="pretrain", unit="step", disable=not progress, dynamic_ncols=True
    )
    train_seconds, tokens, t_wall = 0.0, 0, time.perf_counter()
    recall_now, step = None, start
    while step < end:
        t0 = time.perf_counter()
        batch = sampler.batch(step, cfg.batch_size, cfg.seq_len)
        loss = _step(model, optimizer, scheduler, batch, cfg.grad_clip)
        train_seconds += time.perf_counter() - t0
        tokens, step = tokens + batch.numel(), step + 1
        row = {"step": step, "loss": round(loss, 4), "lr": scheduler.get_last_lr()[0]}
        if step % cfg.eval_every == 0 or step == end:
            hits = recall(model, tokenizer, monitor)
            recall_now = sum(hits) / len(hits)
            row["recall_known_sample"] = round(recall_now, 4)
        if step == end and cfg.extend_steps:  # a round ends: decide (and log) whether to go on
            row["extend"] = extend(cfg, log, recall_now, end)
            end, bar.total = (
                end + cfg.extend_steps * row["extend"],
                bar.total + cfg.extend_steps * row["extend"],
            )
        log.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", recall="-" if recall_now is None else f"{recall_now:.2f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 and step < end:
            _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, step, log)
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
        "steps": log[-1]["step"] if log else cfg.steps,
        "extension_rounds": sum(bool(r.get("extend")) for r in log),
        "resumed_from_step": start,
        "seconds": round(seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "tokens": tokens,
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else math.nan,
        "final_loss": log[-1]["loss"] if log else None,
        "log": log,
    }
