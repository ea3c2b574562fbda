"""The train stage for several LoRA jobs of one base at once: the base is loaded by the caller (and
kept), the jobs not yet finished are trained in one multi-adapter pass (train.multi), and each is
written as `train_stage` writes it, so a study or a resume reads both paths alike. A job with a
checkpoint from the one-at-a-time path is left to `train_stage`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iftscope.outputs import read_sealed, seal
from iftscope.runs import read_json
from iftscope.stages.train import Curve, add_timing, curve_evaluator, read_finished
from iftscope.train.sft import SFTConfig, resolve

# keep(i, model, tokenizer): job i's tuned model (its adapter active, eval mode), base still loaded
Keep = Callable[[int, Any, Any], None]


@dataclass(frozen=True)
class AdapterSpec:
    """One job of a pass: what `train_stage` would be given for it."""

    examples_file: Path
    style: str
    cfg: SFTConfig
    out: Path
    curve: Curve | None = None
    inputs: tuple[Path, ...] = ()  # the stage folders it is trained from (outputs.py's seal)


def shareable(spec: AdapterSpec) -> bool:
    """Whether a multi-adapter pass can train (or resume) this job: LoRA without dropout, no
    checkpoint of the one-at-a-time path."""
    from iftscope.train.adapter_store import resumable

    return spec.cfg.lora and not spec.cfg.lora_dropout and resumable(spec.out)


def train_adapters_stage(
    model,
    tok,
    specs: Sequence[AdapterSpec],
    *,
    dtype: str,
    load_seconds: float = 0.0,
    keep: Keep | None = None,
) -> list[dict[str, Any]]:
    """Every spec's train.json: the finished ones read back (refused if trained with other
    settings), the others trained together on `model` (kept loaded; peft's adapters removed after).
    `load_seconds`: the base's loading time, shared equally by the jobs trained here."""
    from iftscope.intervene.stage import read_examples
    from iftscope.train.multi import AdapterJob, train_adapters

    results: list[dict[str, Any] | None] = [None] * len(specs)
    jobs, todo, clocks = [], [], []
    for i, spec in enumerate(specs):
        examples = read_examples(spec.examples_file, spec.style)
        if not examples:
            raise ValueError(f"{spec.examples_file}: no examples of style {spec.style!r}")
        cfg = resolve(spec.cfg, len(examples))
        if read_sealed(spec.out, "train.json", spec.inputs) is not None:
            results[i] = read_finished(spec.out, cfg)
            continue
        evaluate, every, clock = curve_evaluator(spec.curve, cfg.steps, tok)
        jobs.append(AdapterJob(examples, spec.out, spec.cfg, evaluate, every))
        todo.append(i)
        clocks.append(clock)
    if jobs:
        on_saved = (lambda j, tuned: keep(todo[j], tuned, tok)) if keep else None
        train_adapters(model, tok, jobs, dtype=dtype, on_saved=on_saved)
        for i, clock in zip(todo, clocks, strict=True):
            add_timing(specs[i].out, load=load_seconds / len(jobs), curve=clock["seconds"])
            seal(specs[i].out, specs[i].inputs)
            results[i] = read_json(specs[i].out / "train.json")
    return results  # type: ignore[return-value]
