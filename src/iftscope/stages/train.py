"""The train stage: one group's SFT examples in one style, fine-tuned from a base model with the
same budget as every other group; skipped when OUT/train.json exists (a crash resumes from the
last checkpoint). `iftscope train`, the study and its `accelerate launch` children come here."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from iftscope.outputs import read_sealed, seal
from iftscope.runs import atomic_write_json, read_json
from iftscope.stages.model import ModelSpec
from iftscope.train.sft import SFTConfig, resolve, train_sft
from iftscope.types import Question


@dataclass(frozen=True)
class Curve:
    """QA accuracy on held-out questions during training: every `every` steps, or at `points`
    evenly spaced steps when `every` is 0."""

    questions: Sequence[Question]
    every: int = 0
    points: int = 0
    format: str = "qa"
    pool: Sequence[Question] = ()
    batch_size: int = 64
    # the job's own taught facts asked in a held-back wording (micro-world acquisition, `reworded`),
    # read at the same steps: acquisition by training length beside QA
    taught: Sequence[Question] = ()

    def every_for(self, steps: int) -> int:
        if not self.questions:
            return 0
        return self.every or (max(1, steps // self.points) if self.points else 0)


def train_stage(
    base: ModelSpec,
    examples_file: str | Path,
    style: str,
    cfg: SFTConfig,
    out: str | Path,
    *,
    curve: Curve | None = None,
    progress: bool = False,
    keep: Callable[[Any, Any], None] | None = None,
    inputs: Sequence[Path] = (),
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune on the `style` examples of `examples_file` into OUT/model; returns train.json as
    written. A finished OUT trained with other settings is refused, never silently reused.
    `keep(model, tokenizer)` receives the tuned model still loaded when this call trained it. A
    finished OUT is verified first (outputs.py; `inputs`: the groups folder it was trained from).
    `on_log(row)`: each training step's log row as it is written (train_sft)."""
    from iftscope.intervene.stage import read_examples
    from iftscope.models.load import load_model

    out = Path(out)
    examples = read_examples(examples_file, style)
    if not examples:
        raise ValueError(f"{examples_file}: no examples of style {style!r}")
    # epochs -> steps over the group's facts, not its examples: a group that teaches each fact in
    # several wordings (I-augmented) gets the same steps as the others; warmup ratio -> steps
    cfg = resolve(cfg, len({e.question_id for e in examples}))
    if read_sealed(out, "train.json", inputs) is not None:
        return read_finished(out, cfg)
    # a full fine-tuning's master weights are fp32 (read exactly from the file), trained under the
    # half dtype's autocast and saved in it; a frozen LoRA base stays in it. accelerate places it.
    half = not cfg.lora and base.dtype in ("bfloat16", "float16")
    t0 = time.perf_counter()
    model, tok = load_model(base.path, dtype="float32" if half else base.dtype, device="cpu")
    load = time.perf_counter() - t0
    evaluate, every, clock = curve_evaluator(curve, cfg.steps, tok)
    train_sft(
        model, tok, examples, out, cfg, progress=progress, evaluate=evaluate, evaluate_every=every,
        dtype=base.dtype, on_saved=(lambda tuned: keep(tuned, tok)) if keep else None, on_log=on_log,
    )  # fmt: skip
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, the main process times and seals
        add_timing(out, load=load, curve=clock["seconds"])
        seal(out, inputs)
    return read_json(out / "train.json")  # as a resumed run reads it


def curve_evaluator(curve: Curve | None, steps: int, tok) -> tuple[Any, int, dict[str, float]]:
    """(evaluate(model, step) for the QA curve or None, every how many steps, a clock its calls
    add their seconds to)."""
    clock = {"seconds": 0.0}
    every = curve.every_for(steps) if curve else 0
    if not every:
        return None, 0, clock
    from iftscope.evaluate.qa import qa_evaluator

    inner = qa_evaluator(list(curve.questions), tok, curve.batch_size, curve.format, list(curve.pool))
    taught = curve.taught and qa_evaluator(
        list(curve.taught), tok, curve.batch_size, curve.format, list(curve.pool)
    )

    def evaluate(model, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        try:
            out = inner(model, step)
            if taught:
                out["acquisition_accuracy"] = taught(model, step)["qa_accuracy"]
            return out
        finally:
            clock["seconds"] += time.perf_counter() - t0

    return evaluate, every, clock


def add_timing(out: str | Path, **seconds: float) -> dict[str, Any]:
    """Merge `seconds` (load, curve, evaluate ...) into OUT/train.json's `timing`, rewritten
    atomically; returns train.json as written. `seconds` in train.json is the whole training loop,
    the QA curve's evaluations included."""
    done = read_json(Path(out) / "train.json")
    done["timing"] = done.get("timing", {}) | {k: round(v, 3) for k, v in seconds.items()}
    atomic_write_json(Path(out) / "train.json", done)
    return read_json(Path(out) / "train.json")


def read_finished(out: Path, cfg: SFTConfig) -> dict[str, Any]:
    """OUT/train.json of a finished training; ValueError when it was trained with other settings."""
    done = read_json(out / "train.json")
    wanted = json.loads(json.dumps(asdict(cfg)))
    changed = sorted(k for k, v in wanted.items() if done.get("config", {}).get(k, v) != v)
    if changed:
        raise ValueError(
            f"{out} holds a finished training with other settings ({', '.join(changed)}); "
            "choose another output folder or delete it"
        )
    return done
