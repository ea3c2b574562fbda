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

import os
import resource
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from probe_scaling import scaling_main  # noqa: E402
from probe_vs_lm_eval import random_llama  # noqa: E402

from iftscope.data import load_questions  # noqa: E402
from iftscope.intervene.render import RenderConfig, render_group  # noqa: E402
from iftscope.train.sft import SFTConfig, train_sft  # noqa: E402
from iftscope.types import Group, GroupItem  # noqa: E402

BASE, BATCH, EPOCHS = 300, 16, 2


def one_training(data: Path, k: int, out: Path) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
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
    out = Path(__file__).parent / "results" / "train_scaling.json"
    return scaling_main(__doc__, __file__, one_training, (1, 2, 4), out)


if __name__ == "__main__":
    sys.exit(main())
