"""The train stage: one group's SFT examples in one style, fine-tuned from a base model with the
same budget as every other group; skipped when OUT/train.json exists (a crash resumes from the
last checkpoint). `iftscope train`, the study and its `accelerate launch` children come here."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from iftscope.outputs import read_sealed, seal
from iftscope.runs import read_json
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
) -> dict[str, Any]:
    """Fine-tune on the `style` examples of `examples_file` into OUT/model; returns train.json as
    written. A finished OUT trained with other settings is refused, never silently reused.
    `keep(model, tokenizer)` receives the tuned model still loaded when this call trained it. A
    finished OUT is verified first (outputs.py; `inputs`: the groups folder it was trained from)."""
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
        return _finished(out, cfg)
    # a full fine-tuning's master weights are fp32 (read exactly from the file), trained under the
    # half dtype's autocast and saved in it; a frozen LoRA base stays in it. accelerate places it.
    half = not cfg.lora and base.dtype in ("bfloat16", "float16")
    model, tok = load_model(base.path, dtype="float32" if half else base.dtype, device="cpu")
    every = curve.every_for(cfg.steps) if curve else 0
    evaluate = None
    if every:
        from iftscope.evaluate.qa import qa_evaluator

        evaluate = qa_evaluator(list(curve.questions), tok, curve.batch_size, curve.format, list(curve.pool))
    train_sft(
        model, tok, examples, out, cfg, progress=progress, evaluate=evaluate, evaluate_every=every,
        dtype=base.dtype, on_saved=(lambda tuned: keep(tuned, tok)) if keep else None,
    )  # fmt: skip
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, the main process seals
        seal(out, inputs)
    return read_json(out / "train.json")  # as a resumed run reads it


def _finished(out: Path, cfg: SFTConfig) -> dict[str, Any]:
    done = read_json(out / "train.json")
    wanted = json.loads(json.dumps(asdict(cfg)))
    changed = sorted(k for k, v in wanted.items() if done.get("config", {}).get(k, v) != v)
    if changed:
        raise ValueError(
            f"{out} holds a finished training with other settings ({', '.join(changed)}); "
            "choose another output folder or delete it"
        )
    return done
