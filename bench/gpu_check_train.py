"""bench/gpu_check.py's training stages: LoRA SFT at the large shape and against TRL (4), one full
fine-tuning step at lr 2e-5 (5, the bf16 master-weight check), and `iftscope run smoke` on the saved
small model (6).

Training goes through `train_sft`, the loop behind `iftscope train` and the study; a per-step
callback (its `evaluate` hook) timestamps every step, so the steady-state rate leaves out the first
step's warm-up, and reads the weights as they are after the step (fp32 master weights or not).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from gpu_check_common import Context, matmul_params, questions, random_llama, rate

from iftscope.train.config import SFTConfig
from iftscope.train.sft import batch_indices, tokenize, train_sft
from iftscope.types import LETTERS, SFTExample


def examples(ctx: Context, n: int) -> list[SFTExample]:
    """Vicuna-style SFT examples with the options shown, the answer as `C. text` (the paper's shape)."""
    qs, _ = questions(ctx.data, n, split="train")
    out = []
    for q in qs:
        options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices))
        prompt = f"USER: {q.question.strip()}\n{options} ASSISTANT:"
        answer = f"{LETTERS[q.answer]}. {q.choices[q.answer]}"
        out.append(
            SFTExample(q.id, "H", q.id, prompt, " " + answer, answer, LETTERS[q.answer], "answer", "gold")
        )
    return out


def _train(model, tok, data, cfg: SFTConfig, out, dtype: str | None, on_step=None) -> dict:
    """train_sft with a per-step callback; `dtype` only where this iftscope's train_sft takes it."""
    stamps: list[float] = []

    def step(m, n):
        stamps.append(time.perf_counter())
        if on_step:
            on_step(m, n)
        return {}

    kwargs = {"dtype": dtype} if "dtype" in inspect.signature(train_sft).parameters else {}
    summary = train_sft(model, tok, data, out, cfg, progress=False, evaluate=step, evaluate_every=1, **kwargs)
    rows = tokenize(data, tok, cfg.max_length)
    per_step = [
        sum(len(rows[i][0]) for i in batch_indices(len(rows), s, cfg.batch_size, cfg.seed))
        for s in range(cfg.steps)
    ]
    steady = sum(per_step[1:]), (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {"summary": summary, "per_step_tokens": per_step, "steady": steady, "takes_dtype": bool(kwargs)}


def _sft_config(s, **settings) -> SFTConfig:
    """The check's SFT runs: the sizes' batch, micro-batch and length, no warmup, no checkpoints."""
    return SFTConfig(
        batch_size=s.sft_batch, micro_batch_size=s.sft_micro, max_length=s.max_length, warmup=0,
        checkpoint_every=0, **settings,
    )  # fmt: skip


def sft_lora(ctx: Context) -> dict:
    """LoRA SFT at the large shape, global batch in micro-batches; then iftscope vs TRL's
    SFTTrainer on the small model, same data, batch, steps and LoRA."""
    s, tok = ctx.sizes, ctx.tok()
    data = examples(ctx, s.sft_examples)
    cfg = _sft_config(s, steps=s.sft_steps, lr=2e-4, lora=True)
    model = random_llama(s.large, tok, s.dtype, ctx.device)
    flops = 4 * matmul_params(model)  # LoRA: forward 2N + backward through frozen weights 2N per token
    import gpu_check_common as common

    common.reset_memory()
    large = _train(model, tok, data, cfg, ctx.work / "sft-large", None)
    result = {
        "shape": s.large,
        "config": {k: getattr(cfg, k) for k in ("steps", "batch_size", "micro_batch_size")},
        "large_steady": rate(*large["steady"], flops, ctx.peak),
        "large_whole_tokens_per_second": large["summary"]["tokens_per_second"],
        **{f"large_{k}": v for k, v in common.peak_memory().items()},
    }
    del model
    common.reset_memory()
    ours = _train(ctx.load_small(), tok, data, cfg, ctx.work / "sft-small", None)
    result["small_ours_seconds"] = ours["summary"]["seconds"]
    result["small_ours_tokens"] = sum(ours["per_step_tokens"])
    try:
        trl_seconds, trl_version = _trl(ctx, tok, data, cfg)
    except ImportError as e:
        result["trl"] = f"skipped: {e}"
        return result
    except Exception as e:  # TRL's failure is a finding; the figures above stand
        result["trl"] = f"error: {type(e).__name__}: {e}"[:2000]
        return result
    result |= {
        "trl": trl_version,
        "small_trl_seconds": round(trl_seconds, 3),
        "tokens_per_second_ratio_ours_over_trl": round(trl_seconds / ours["summary"]["seconds"], 3),
    }
    return result


def _trl(ctx: Context, tok, data, cfg: SFTConfig) -> tuple[float, str]:
    """Seconds of TRL's SFTTrainer.train() on the same examples, batch (as micro-batches x
    accumulation), steps, learning rate and LoRA."""
    import trl
    from accelerate.state import AcceleratorState
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer

    AcceleratorState._reset_state(reset_partial_state=False)  # our accelerator's settings are not TRL's
    gpu = torch.cuda.is_available()
    args = TRLConfig(
        output_dir=str(ctx.work / "trl"),
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.batch_size // cfg.micro_batch_size,
        learning_rate=cfg.lr,
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        max_length=cfg.max_length,
        use_cpu=not gpu,
        bf16=gpu and ctx.sizes.dtype == "bfloat16",
        seed=0,
        disable_tqdm=True,
    )
    peft = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.0,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    rows = Dataset.from_list([{"prompt": e.prompt, "completion": e.response} for e in data])
    trainer = SFTTrainer(
        model=ctx.load_small(), args=args, train_dataset=rows, processing_class=tok, peft_config=peft
    )
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    AcceleratorState._reset_state(reset_partial_state=False)
    return seconds, trl.__version__


def full_step(ctx: Context) -> dict:
    """One full fine-tuning step of the small model at lr 2e-5 in the run's dtype, and the same step
    in fp32: the fraction of weights each moved (with fp32 master weights the half-precision step
    moves them as the fp32 one does; without, most updates round away)."""
    import gpu_check_common as common

    s, tok = ctx.sizes, ctx.tok()
    data = examples(ctx, s.sft_examples)
    cfg = _sft_config(s, steps=1, lr=2e-5, lora=False)
    start = {n: p.detach().clone() for n, p in ctx.load_small().named_parameters()}
    deltas: dict[str, dict] = {}

    def measure(label):
        def on_step(model, _step):
            moved, total, norms = 0, 0, {}
            for n, p in model.named_parameters():
                d = p.detach().float() - start[n].float()
                moved, total = moved + int((d != 0).sum()), total + d.numel()
                norms[n] = d
            deltas[label] = {"fraction_changed": moved / total, "dtype": str(p.dtype), "d": norms}

        return on_step

    full = ctx.load_small("float32")
    flops = 6 * matmul_params(full)
    _train(full, tok, data, cfg, ctx.work / "full-fp32", "float32", measure("fp32"))
    del full
    common.reset_memory()
    takes = "dtype" in inspect.signature(train_sft).parameters
    model = ctx.load_small("float32" if takes else s.dtype)  # as the train stage loads a half model
    run = _train(model, tok, data, cfg, ctx.work / "full-half", s.dtype, measure("half"))
    ref, got = deltas["fp32"].pop("d"), deltas["half"].pop("d")
    num = sum(float((got[n] - ref[n]).norm() ** 2) for n in ref) ** 0.5
    den = sum(float(ref[n].norm() ** 2) for n in ref) ** 0.5
    saved = _saved_changed(ctx.work / "full-half" / "model", start)
    return {
        "dtype": s.dtype,
        "lr": cfg.lr,
        "train_sft_takes_dtype": run["takes_dtype"],
        "fp32_step": deltas["fp32"],
        "half_step": deltas["half"],
        "saved_fraction_changed": saved,
        "update_relative_difference_vs_fp32": round(num / den, 4) if den else None,
        "whole": rate(sum(run["per_step_tokens"]), run["summary"]["seconds"], flops, ctx.peak),
    }


def _saved_changed(folder, start: dict) -> float:
    from safetensors.torch import load_file

    moved = total = 0
    for f in sorted(folder.glob("*.safetensors")):
        for n, t in load_file(f).items():
            if n in start:
                moved += int((t.float().cpu() != start[n].float().cpu()).sum())
                total += t.numel()
    return moved / total if total else float("nan")


def _smoke_files(ctx: Context) -> dict[str, Path]:
    """The smoke study's question files (IFT questions, a test set, the demonstration pool), JSONL."""
    ift, _ = questions(ctx.data, ctx.sizes.smoke_ift, split="train")
    test, pool = questions(ctx.data, ctx.sizes.smoke_tests)
    files = {}
    for name, qs in (("ift", ift), ("test", test), ("pool", pool)):
        files[name] = ctx.work / f"smoke-{name}.jsonl"
        rows = [
            {"id": q.id, "question": q.question, "choices": list(q.choices), "answer": q.answer} for q in qs
        ]
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


def _smoke_overrides(ctx: Context, files: dict[str, Path], lora: bool) -> list[str]:
    """The smoke recipe on real data: the saved small model, the paper's probe and template."""
    s = ctx.sizes
    data = [f"data.model={ctx.small_model}", f"data.ift=[{files['ift']}]", f"data.pool=[{files['pool']}]"]
    data.append(f"data.tests.HOMO={files['test']}")
    paper = ["probe.format=paper", "probe.shots=5", "probe.demos=first", "render.template=vicuna"]
    paper.append("render.show_options=true")
    train = [f"train.lora={str(lora).lower()}", "train.steps=4", f"train.batch_size={s.sft_micro}"]
    train += ["train.lr=0.00002", f"dtype={s.dtype}", "eval_batch_size=32"]
    small = ["generation_questions=8", "curve_questions=0", f"groups=[{s.smoke_groups}]"]
    return data + paper + train + small


def smoke(ctx: Context) -> dict:
    """`iftscope run smoke` with the saved small model as data.model, the paper's probe and vicuna
    template, LoRA and full fine-tuning, each in its own process (a failure is recorded, not raised)."""
    files, out, limit = _smoke_files(ctx), {}, ctx.sizes.smoke_timeout
    for name, lora in (("lora", True), ("full", False)):
        folder = ctx.work / f"smoke-{name}"
        cmd = [sys.executable, "-m", "iftscope", "run", "--out", str(folder), "--quiet", "smoke"]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                cmd + _smoke_overrides(ctx, files, lora),
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
            )
            rc, tail = done.returncode, (done.stdout + done.stderr)[-1500:]
        except subprocess.TimeoutExpired as e:
            said = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
            rc, tail = "timeout", f"{said[-1000:]}\ntimed out after {limit} s"
        summary = folder / "analysis" / "summary.json"
        stage = json.loads(summary.read_text()).get("stage_seconds") if summary.exists() else None
        out[name] = {"returncode": rc, "seconds": round(time.perf_counter() - t0, 2), "stage_seconds": stage}
        if rc != 0:
            out[name]["output_tail"] = tail
    failed = [k for k, v in out.items() if v["returncode"] != 0]
    return {"status": f"error: iftscope run failed ({', '.join(failed)})" if failed else "ok", **out}
