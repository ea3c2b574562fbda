"""Probe cost against the number of questions, against the machine's limit, and its memory.

- Scaling: probe time for 1x, 2x, 4x questions; the exponent of time ~ questions^k (1 = linear).
- Distance to the limit: forward FLOPs the probe's token work needs (2 x parameters x tokens, plus
  attention), divided by the machine's matrix-multiply rate measured here with a large torch matmul.
- Memory: peak resident memory of a probe of 1x and 10x the questions, each in its own process;
  records stream to disk, so 10x the questions should not cost 10% more memory.

    python bench/probe_scaling.py --data ../shared/data/xiezhi/engineering

Model: a random Llama of 18.2M parameters with a BPE vocabulary trained on the questions (as in
probe_vs_lm_eval.py), `mmlu` format, 5-shot shared demonstrations. Writes
bench/results/probe_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from probe_vs_lm_eval import random_llama  # noqa: E402

from iftscope.data import load_questions  # noqa: E402
from iftscope.models.scorer import HFScorer  # noqa: E402
from iftscope.probe.formats import get_format  # noqa: E402
from iftscope.probe.knowledge import ProbeConfig  # noqa: E402
from iftscope.probe.runner import run_probe  # noqa: E402


def matmul_rate(n: int = 2048, reps: int = 10) -> float:
    """Measured float32 GFLOP/s of a large square matmul on this machine (best of reps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def questions_times(base, k: int):
    """k copies of the questions, each with its own id (and a marker so prompts differ)."""
    return [replace(q, id=f"{q.id}~{i}", question=f"{q.question} ({i})") for i in range(k) for q in base]


def token_work(scorer: HFScorer, prompts_tokens: list[list[int]], config) -> float:
    """FLOPs of the forward passes the scorer actually runs: shared prefixes once, tails per prompt."""
    params = sum(p.numel() for p in scorer.model.parameters())
    groups = scorer._groups(prompts_tokens, [len(s) - 1 for s in prompts_tokens])
    flops = 0.0
    layers, hidden = config.num_hidden_layers, config.hidden_size
    for shared, members in groups:
        if shared:
            flops += 2 * params * shared + 4 * layers * hidden * shared * shared / 2
        for i in members:
            tail, total = len(prompts_tokens[i]) - shared, len(prompts_tokens[i])
            flops += 2 * params * tail + 4 * layers * hidden * tail * total
    return flops


def one_probe(data: Path, k: int, out: Path) -> dict:
    base = load_questions(data / "test.jsonl")
    pool = load_questions(data / "dev.jsonl")
    model, tok = random_llama([q.question + " " + " ".join(q.choices) for q in [*base, *pool]] * 3)
    qs = questions_times(base, k)
    scorer = HFScorer(model, tok, batch_size=32)
    fmt, cfg = get_format("mmlu"), ProbeConfig(format="mmlu", shots=5, batch_questions=256)
    t0 = time.perf_counter()
    run_probe(scorer, qs, pool, fmt, cfg, out, progress=False)
    seconds = time.perf_counter() - t0
    from iftscope.probe.knowledge import choose_demos

    prompts = [scorer.encode(fmt.letter_prompt(q, q.choices, choose_demos(q, pool, cfg, 0))) for q in qs]
    return {
        "questions": len(qs),
        "seconds": round(seconds, 2),
        "flops": token_work(scorer, prompts, model.config),
        "tokens_in_prompts": sum(len(p) for p in prompts),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def each_in_a_process(script: str, data: Path, ks) -> dict[int, dict] | None:
    """`script --one K` for each size, in a fresh process (its own peak memory): its RESULT line."""
    rows = {}
    for k in ks:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, script, "--data", str(data), "--one", str(k), "--tmp", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not line:
                print(done.stderr[-3000:], file=sys.stderr)
                return None
            rows[k] = json.loads(line[0][7:])
            print(k, rows[k], flush=True)
    return rows


def scaling_result(rows: dict[int, dict]) -> dict:
    """Time exponent over 1x/2x/4x, and achieved FLOP rate against the matmul rate measured now."""
    rate = matmul_rate()
    ks = np.array([1, 2, 4])
    exponent = float(np.polyfit(np.log(ks), np.log([rows[k]["seconds"] for k in ks]), 1)[0])
    return {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}",
        "command": "python " + " ".join(sys.argv),
        "runs": rows,
        "time_exponent_1x_2x_4x": round(exponent, 3),
        "matmul_gflops": round(rate, 1),
        "achieved_gflops": {k: round(r["flops"] / r["seconds"] / 1e9, 1) for k, r in rows.items()},
        "percent_of_limit": {
            k: round(100 * r["flops"] / r["seconds"] / 1e9 / rate, 1) for k, r in rows.items()
        },
    }


def scaling_main(doc: str, script: str, one, ks: tuple[int, ...], out: Path) -> int:
    """The command line both scaling scripts share: `--one K` measures one size (run by the parent
    in its own process); without it, every size, the summary, and the peak memory of the largest
    size over 1x, written to `--out`."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xiezhi/engineering"))
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=out)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.data, args.one, args.tmp)))
        return 0
    rows = each_in_a_process(script, args.data, ks)
    if rows is None:
        return 1
    result = scaling_result(rows)
    top = max(ks)
    result[f"memory_{top}x_over_1x"] = round(rows[top]["peak_rss_mib"] / rows[1]["peak_rss_mib"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


def main() -> int:
    out = Path(__file__).parent / "results" / "probe_scaling.json"
    return scaling_main(__doc__, __file__, one_probe, (1, 2, 4, 10), out)


if __name__ == "__main__":
    sys.exit(main())
