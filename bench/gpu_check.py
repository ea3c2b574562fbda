"""The prepared GPU check (issue 19): iftscope's real path measured on an accelerator, in one script.

Random-initialised Llama models with the real Llama-2 SentencePiece tokenizer (32k): one of about 1B
parameters (TinyLlama's shape, saved once, read by every stage that needs it) and one with
Llama-2-7B's exact shape (built in place on the GPU, never saved). Stages, each written to
OUT/<n>_<name>.json the moment it ends (a timeout loses nothing already written), each with its
time, throughput, fraction of the matmul peak measured here (OUT/0_environment.json) and peak memory:

  1 correctness   1B, 256 questions 5-shot: prefix-cached vs plain vs one-sequence scores; bf16 vs
                  fp32 argmax agreement and tie rates; batched vs one-at-a-time greedy generation
  2 probe         7B shape, 1,000 questions 5-shot, batch 8 and 64, prefix reuse on and off
  3 lm_eval       iftscope vs lm-eval's `hf` backend on 1B, 500 questions: time ratio, agreement
  4 sft           LoRA SFT at the 7B shape, global batch 256 in micro-batches; iftscope vs TRL on 1B
  5 full_step     full fine-tuning of 1B, one step at lr 2e-5: fraction of weights changed
  6 smoke         `iftscope run smoke` with the saved 1B model as data.model, LoRA and full
  7 multi_adapter 6 LoRA jobs at the 7B shape, one at a time vs six adapters per pass on one
                  base (train.multi): tokens/s, peak memory, the adapters' difference

A stage whose package is missing (lm-eval, trl) records "skipped: <why>"; one that fails records
"error: <what>" and the next one runs. `--tiny` runs the same stages at toy sizes on the CPU.

    python bench/gpu_check.py --out OUT [--tiny] [--stages 1,5] [--budget 480] [--data DIR]

bench/gpu_check.sh runs it on the GPU machine; docs/gpu-check.md says what to carry there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the gpu_check_* modules beside this one

import torch  # noqa: E402
from gpu_check_common import CPU_TINY, GPU, Context, matmul_peak, peak_memory, reset_memory  # noqa: E402

# (file stem, module, function, Python packages it needs); run in this order: the bf16 checks first
STAGES = (
    ("1_correctness", "gpu_check_probe", "correctness", ()),
    ("5_full_step", "gpu_check_train", "full_step", ()),
    ("2_probe", "gpu_check_probe", "probe_throughput", ()),
    ("4_sft", "gpu_check_train", "sft_lora", ()),
    ("7_multi_adapter", "gpu_check_multi", "multi_adapter", ()),
    ("3_lm_eval", "gpu_check_probe", "lm_eval_compare", ("lm_eval",)),
    ("6_smoke", "gpu_check_train", "smoke", ()),
)
VERSIONED = (
    "torch",
    "transformers",
    "accelerate",
    "peft",
    "tokenizers",
    "datasets",
    "pyarrow",
    "fsspec",
    "lm-eval",
    "trl",
    "mistral-common",
)


def write(out: Path, stem: str, record: dict) -> None:
    """OUT/<stem>.json, atomically: a kill mid-write leaves the previous file or none."""
    tmp = out / f".{stem}.json.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    tmp.replace(out / f"{stem}.json")


def versions() -> dict:
    """Installed distributions' versions (None: not installed), read without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def environment(args, sizes) -> dict:
    """What a figure needs beside it: command, commit, machine, GPU, package versions, sizes."""
    import subprocess

    def git(*words: str) -> str:
        try:
            return subprocess.run(["git", *words], capture_output=True, text=True, check=False).stdout
        except OSError:  # no git there
            return ""

    commit, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--", "src", "bench/gpu_check*")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": commit.strip() or os.environ.get("GPU_CHECK_COMMIT"),  # no .git on the GPU machine
        "code_modified": bool(dirty.strip()) if commit else None,  # src/ or this script, uncommitted
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "gpu": gpu,
        "tiny": args.tiny,
        "sizes": sizes.__dict__,
        "versions": versions(),
    }


def prepare(args, out: Path, work: Path) -> Context:
    """The tokenizer folder, the saved small model (the sizes' dtype) and the measured matmul peak."""
    from gpu_check_common import random_llama, tokenizer_folder

    sizes = CPU_TINY if args.tiny else GPU
    device = "cuda" if torch.cuda.is_available() else "cpu"
    env = environment(args, sizes)
    t0 = time.perf_counter()
    env["matmul_peak"] = peak = matmul_peak(sizes.matmul)
    tok = tokenizer_folder(work / "tokenizer", args.tokenizer_model)
    model = random_llama(sizes.small, tok, sizes.dtype, device)
    env["small_parameters"] = sum(p.numel() for p in model.parameters())
    model.save_pretrained(work / "small", safe_serialization=True)
    tok.save_pretrained(work / "small")
    del model
    env["prepare_seconds"] = round(time.perf_counter() - t0, 2)
    write(out, "0_environment", env)
    return Context(sizes, device, peak, work / "tokenizer", work / "small", args.data, work)


def run_stage(
    ctx: Context, out: Path, stem: str, module: str, func: str, needs: tuple, deadline: float
) -> str:
    """Run one stage and write its record, whatever happens (ok, skipped or error)."""
    record: dict = {"stage": stem}
    missing = [n for n in needs if importlib.util.find_spec(n) is None]
    if missing:
        record["status"] = f"skipped: {', '.join(missing)} not installed (pip install {' '.join(missing)})"
    elif time.monotonic() > deadline:
        record["status"] = "skipped: the time budget (--budget) was spent before it started"
    else:
        reset_memory()
        t0 = time.perf_counter()
        try:
            result = getattr(__import__(module), func)(ctx)
            record |= {"status": "ok", **result}
        except Exception as e:  # a broken stage is a finding: record it and go on
            record |= {
                "status": f"error: {type(e).__name__}: {e}",
                "traceback": traceback.format_exc()[-4000:],
            }
        record["seconds"] = round(time.perf_counter() - t0, 2)
        record |= peak_memory()
    write(out, stem, record)
    print(f"[gpu_check] {stem}: {record['status'][:200]} ({record.get('seconds', 0)} s)", flush=True)
    return record["status"]


def main(argv: list[str] | None = None) -> int:
    """Prepare, then every chosen stage in order; 1 if any stage failed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the stages' JSON files")
    ap.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (the test suite runs this)")
    ap.add_argument("--stages", default="", help="comma-separated stage numbers (default: all)")
    ap.add_argument("--budget", type=float, default=0, help="seconds; stages not started by then are skipped")
    ap.add_argument("--data", type=Path, help="a Xiezhi folder (engineering/*.jsonl); default: synthetic")
    ap.add_argument("--tokenizer-model", type=Path, help="tokenizer.model.v1 when mistral-common is missing")
    ap.add_argument("--work", type=Path, help="scratch folder for the models (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.tiny:
        torch.set_num_threads(1)  # toy matrices: threads only contend
    wanted = {s.strip() for s in args.stages.split(",") if s.strip()}
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (args.budget or 1e9)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        ctx = prepare(args, args.out, Path(tmp))
        statuses = [
            run_stage(ctx, args.out, stem, module, func, needs, deadline)
            for stem, module, func, needs in STAGES
            if not wanted or stem.split("_")[0] in wanted
        ]
    return 1 if any(s.startswith("error") for s in statuses) else 0


if __name__ == "__main__":
    sys.exit(main())
