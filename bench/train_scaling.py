"""Training cost against the number of IFT examples, and its distance to the machine's limit.

- Scaling: the same number of epochs over 1x, 2x, 4x the examples (so 1x, 2x, 4x the steps); the
  exponent of time ~ examples^k (1 = linear).
- Distance to the limit: the FLOPs LoRA training needs (forward 2 x parameters x tokens, backward
  through the frozen weights another 2 x parameters x tokens; the adapters' own gradients are
  negligible), divided by the float32 matrix-multiply rate measured in the same script.
- Memory: peak resident memory of each size, each in its own process.

    python bench/train_scaling.py --data ../shared/data/xiezhi/engineering

Model: the random Llama of 18.2M parameters of probe_vs_lm_eval.py; examples: the Xiezhi training
questions with their gold answers in the paper's vicuna template with options shown; LoRA r16, batch
16, 2 epochs. Writes bench/results/train_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from probe_scaling import each_in_a_process, scaling_result  # noqa: E402
from probe_vs_lm_eval import random_llama  # noqa: E402

from iftscope.data import load_questions  # noqa: E402
from iftscope.intervene.render import RenderConfig, render_group  # noqa: E402
from iftscope.train.sft import SFTConfig, train_sft  # noqa: E402
from iftscope.types import Group, GroupItem  # noqa: E402

BASE, BATCH, EPOCHS = 300, 16, 2


def one_training(data: Path, k: int, out: Path) -> dict:
    questions = load_questions(data / "train.jsonl")
    model, tok = random_llama([q.question + " " + " ".join(q.choices) for q in questions[:2000]] * 2)
    chosen = questions[: BASE * k]
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 1.0) for q in chosen)
    examples = render_group(
        Group("H", "", items), {q.id: q for q in chosen}, RenderConfig(template="vicuna", show_options=True)
    )
    steps = EPOCHS * len(examples) // BATCH
    cfg = SFTConfig(steps=steps, batch_size=BATCH, lr=1e-3, warmup=5, checkpoint_every=0, max_length=512)
    summary = train_sft(model, tok, examples, out, cfg, progress=False)
    tokens = summary["tokens_per_second"] * summary["seconds"]
    params = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    return {
        "examples": len(examples),
        "steps": steps,
        "seconds": summary["seconds"],
        "tokens": round(tokens),
        "tokens_per_second": summary["tokens_per_second"],
        "flops": 4 * params * tokens,
        "final_loss": summary["final_loss"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xiezhi/engineering"))
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_scaling.json")
    args = ap.parse_args()
    if args.one:
        torch.set_num_threads(os.cpu_count() or 1)
        print("RESULT " + json.dumps(one_training(args.data, args.one, args.tmp)))
        return 0
    rows = each_in_a_process(__file__, args.data, (1, 2, 4))
    if rows is None:
        return 1
    result = scaling_result(rows)
    result["memory_4x_over_1x"] = round(rows[4]["peak_rss_mib"] / rows[1]["peak_rss_mib"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
