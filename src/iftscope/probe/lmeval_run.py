"""Run lm-evaluation-harness on an exported task folder through its Python API (`simple_evaluate`),
with whatever model type the user names (hf, vllm, sglang ...), and keep its logged samples.

lm-eval is an optional extra: asking for it without it installed is an error naming the extra.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iftscope.runs import atomic_write_text

EXTRA = "pip install 'iftscope[lm-eval]'"


class MissingExtra(ValueError):
    """An optional dependency a setting needs is not installed (a user error: exit 2, one line)."""


def require_lm_eval():
    """The lm_eval module, or an error naming the extra that installs it."""
    try:
        import lm_eval
    except ImportError as e:
        raise MissingExtra(
            f"probe.backend lm-eval needs lm-evaluation-harness, which is not installed ({e}): {EXTRA}"
        ) from None
    return lm_eval


def parse_model_args(text: str) -> dict[str, Any]:
    """ "key=value,key=value" as lm-eval's --model_args reads it (its own parser: same types)."""
    if not text.strip():
        return {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"probe.lm_eval_args: {part!r} is not key=value (expected 'dtype=bfloat16,...')")
    require_lm_eval()
    from lm_eval.utils import simple_parse_args_string

    return simple_parse_args_string(text)


@dataclass(frozen=True)
class AdapterArgs:
    """How one lm-eval model type takes a PEFT (LoRA) adapter on its base model: the model_args key
    naming the adapter folder, and the key bounding the LoRA rank it accepts, if it has one."""

    path: str
    rank: str | None = None


# lm-eval model type -> its adapter arguments (types not here cannot score a LoRA job's adapter)
ADAPTER_ARGS: dict[str, AdapterArgs] = {
    "hf": AdapterArgs("peft"),  # models/huggingface.py: PeftModel.from_pretrained(base, peft)
    "hf-auto": AdapterArgs("peft"),
    "huggingface": AdapterArgs("peft"),
    "vllm": AdapterArgs("lora_local_path", rank="max_lora_rank"),  # LoRARequest; enable_lora follows
}
# model_args the study fills in for each model it scores; a recipe naming them would score one model
MODEL_KEYS = ("pretrained", *sorted({a.path for a in ADAPTER_ARGS.values()}))


def adapter_args(model_type: str, adapter: str | Path) -> dict[str, Any]:
    """The model_args that put ADAPTER (a PEFT folder) on the base for lm-eval model type
    `model_type`; ValueError naming the types that can when this one cannot."""
    if model_type not in ADAPTER_ARGS:
        raise ValueError(
            f"probe.lm_eval_model {model_type!r} cannot be given a LoRA adapter by iftscope (model "
            f"types that can: {', '.join(ADAPTER_ARGS)}); use one of them, or full fine-tuning "
            "(train.lora false)"
        )
    spec = ADAPTER_ARGS[model_type]
    out: dict[str, Any] = {spec.path: str(adapter)}
    if spec.rank:  # vLLM preallocates LoRA slots of max_lora_rank (default 16): at least the adapter's r
        r = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8")).get("r", 16)
        out[spec.rank] = max(16, 1 << (int(r) - 1).bit_length())
    return out


def lm_eval_device(device: str) -> str | None:
    """Our `device` key as lm-eval's: auto -> the first GPU if any, else the CPU."""
    if device in ("auto", "map"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_lm_eval(
    task_dir: str | Path,
    tasks: Sequence[str],
    model: str,
    model_args: dict[str, Any],
    samples_dir: str | Path,
    batch_size: int | str = 32,
    device: str | None = None,
) -> dict[str, Path]:
    """lm-eval on `tasks` of the folder; each task's samples written to SAMPLES_DIR/samples_<task>.jsonl
    (one JSON line per document, as lm-eval's --log_samples). Returns task -> file."""
    require_lm_eval()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    kwargs: dict[str, Any] = {} if "batch_size" in model_args else {"batch_size": batch_size}
    results = simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=list(tasks),
        device=device,
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        log_samples=True,
        bootstrap_iters=0,
        verbosity="ERROR",
        **kwargs,
    )
    _release()  # lm-eval's copy of the model, before the caller loads another
    if results is None:  # a non-zero rank of a multi-process run: rank 0 writes
        return {}
    files = {}
    for task in tasks:
        rows = sorted(results["samples"][task], key=lambda s: s["doc_id"])
        text = "".join(json.dumps(_plain(r), ensure_ascii=False, default=str) + "\n" for r in rows)
        files[task] = atomic_write_text(Path(samples_dir) / f"samples_{task}.jsonl", text)
    return files


def _release() -> None:
    """Collect the model lm-eval loaded and hand cached GPU memory back to the driver."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _plain(sample: dict[str, Any]) -> dict[str, Any]:
    """The fields import reads, with responses as plain lists (lm-eval's are tuples of floats)."""
    keep = ("doc_id", "doc", "target", "resps", "filtered_resps", "acc")
    return {k: sample[k] for k in keep if k in sample}
