"""Pretraining throughput of the micro-world base model: tokens per second, eager vs sdpa attention.

Both variants run in this one process, alternating A/B blocks so that machine noise hits both
alike; the figure to quote is the ratio, and the eager tokens/s of the default configuration.

    python bench/pretrain_throughput.py [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from iftscope.microworld.generator import WorldConfig, make_people, vocabulary
from iftscope.microworld.pretrain import BiographySampler, PretrainConfig
from iftscope.microworld.tiny import TinyModelConfig, build_model, count_parameters
from iftscope.microworld.tokenizer import build_word_tokenizer


def time_steps(model, sampler, cfg: PretrainConfig, first_step: int, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    model.train()
    t0 = time.perf_counter()
    for step in range(first_step, first_step + steps):
        batch = sampler.batch(step, cfg.batch_size, cfg.seq_len)
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * cfg.batch_size * cfg.seq_len / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "pretrain_throughput.json"
    )
    args = parser.parse_args()

    tokenizer = build_word_tokenizer(vocabulary())
    people = make_people(WorldConfig())
    sampler = BiographySampler(people, tokenizer, seed=0)
    cfg = PretrainConfig()
    models = {}
    for attention in ("eager", "sdpa"):
        mcfg = TinyModelConfig(attention=attention)
        models[attention] = build_model(
            mcfg,
            len(tokenizer),
            tokenizer.bos_token_id,
            tokenizer.eos_token_id,
            tokenizer.pad_token_id,
            seed=0,
        )
        time_steps(models[attention], sampler, cfg, 10_000, 5)  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in models}
    for r in range(args.rounds):
        for name in ("eager", "sdpa") if r % 2 == 0 else ("sdpa", "eager"):
            rates[name].append(time_steps(models[name], sampler, cfg, r * args.steps, args.steps))
    median = {k: statistics.median(v) for k, v in rates.items()}
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "command": "python " + " ".join(sys.argv),
        "config": {
            "batch_size": cfg.batch_size,
            "seq_len": cfg.seq_len,
            "parameters": count_parameters(models["eager"]),
        },
        "tokens_per_second": {k: [round(x) for x in v] for k, v in rates.items()},
        "median_tokens_per_second": {k: round(v) for k, v in median.items()},
        "ratio_eager_over_sdpa": round(median["eager"] / median["sdpa"], 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
