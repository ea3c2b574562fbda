"""Our SFT loop against TRL's SFTTrainer: same model, examples, batch, steps, LoRA config.

Each training runs in its own subprocess (so peak resident memory is its own), alternating ours
and TRL's over several repetitions. Reported per run: tokens/s (non-padding tokens seen / training
wall time), peak RSS, and the final loss (mean of the last 10 steps); then median ratios.

    pip install trl
    python bench/sft_vs_trl.py --world runs/default/world --steps 100

Writes bench/results/sft_vs_trl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch


def examples_for(world: Path, n: int):
    """H-style examples: known people's facts in the plain QA template with the data's explanation."""
    from iftscope.data import load_questions
    from iftscope.intervene.render import RenderConfig, render_group
    from iftscope.types import Group, GroupItem

    qs = [q for q in load_questions(world / "questions.jsonl") if q.metadata["split"] == "known_ift"][:n]
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 1.0) for q in qs)
    return render_group(Group("H", "", items), {q.id: q for q in qs}, RenderConfig(styles=("explained",)))


def one_run(which: str, world: Path, steps: int, batch: int, lora: bool, n: int, out: Path) -> dict:
    from iftscope.models.load import load_model
    from iftscope.train.sft import LLAMA_MODULES, SFTConfig, tokenize, train_sft

    torch.manual_seed(0)
    model, tok = load_model(world / "model")
    model.train()
    examples = examples_for(world, n)
    cfg = SFTConfig(
        steps=steps, batch_size=batch, lr=3e-3 if lora else 1e-3, warmup=10, lora=lora, checkpoint_every=0
    )
    if which == "ours":
        s = train_sft(model, tok, examples, out, cfg, progress=False)
        losses, seconds, tps = [r["loss"] for r in s["log"]], s["seconds"], s["tokens_per_second"]
    else:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig as TRLConfig
        from trl import SFTTrainer

        data = Dataset.from_list([{"prompt": e.prompt, "completion": e.response} for e in examples])
        args = TRLConfig(
            output_dir=str(out),
            max_steps=steps,
            per_device_train_batch_size=batch,
            learning_rate=cfg.lr,
            lr_scheduler_type="linear",
            warmup_steps=cfg.warmup,
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            max_length=cfg.max_length,
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
        )
        peft = LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.0, target_modules=list(LLAMA_MODULES), task_type="CAUSAL_LM"
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tok,
            peft_config=peft if lora else None,
        )
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        rows = tokenize(examples, tok, cfg.max_length)  # same examples: tokens per epoch, for tokens/s
        per_example = [len(r[0]) for r in rows]
        seen = sum(per_example[i % len(rows)] for i in range(steps * batch))
        tps = seen / seconds
    return {
        "which": which,
        "lora": lora,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tps, 1),
        "final_loss": round(statistics.mean(losses[-10:]), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, default=Path("runs/default/world"))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--examples", type=int, default=256)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--one", choices=["ours", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sft_vs_trl.json")
    args = ap.parse_args()
    if args.one:
        row = one_run(
            args.one, args.world, args.steps, args.batch_size, not args.full, args.examples, args.tmp
        )
        print("RESULT " + json.dumps(row))
        return 0
    import tempfile

    rows = []
    for lora in (True, False):
        for rep in range(args.reps):
            for which in ("ours", "trl"):  # alternating, so load drifts hit both
                with tempfile.TemporaryDirectory() as tmp:
                    cmd = [sys.executable, __file__, "--one", which, "--world", str(args.world), "--tmp", tmp]
                    cmd += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
                    cmd += ["--examples", str(args.examples)] + ([] if lora else ["--full"])
                    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
                    if done.returncode or not line:
                        print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                        return 1
                    row = {**json.loads(line[0][7:]), "rep": rep}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    summary = {}
    for lora in (True, False):
        med = {
            w: {
                k: statistics.median(r[k] for r in rows if r["which"] == w and r["lora"] == lora)
                for k in ("tokens_per_second", "peak_rss_mib", "final_loss")
            }
            for w in ("ours", "trl")
        }
        summary["lora" if lora else "full"] = {
            **med,
            "throughput_ratio_ours_over_trl": round(
                med["ours"]["tokens_per_second"] / med["trl"]["tokens_per_second"], 3
            ),
            "final_loss_difference": round(med["ours"]["final_loss"] - med["trl"]["final_loss"], 4),
        }
    import trl

    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}",
        "trl": trl.__version__,
        "command": "python " + " ".join(sys.argv),
        "summary": summary,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
