"""The intervene stage: IFT groups from the probe's records, rendered as SFT examples; skipped
when OUT/summary.json exists. Loads the base model only when a style, template or group needs it
(self-explained responses are written by it; the chat template is its tokenizer's; self-instruct's
questions on real data are written and answered by it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.intervene.stage import run_intervene
from iftscope.outputs import read_sealed, seal
from iftscope.probe.knowledge import ProbeConfig
from iftscope.runs import read_json
from iftscope.stages.model import ModelSpec
from iftscope.types import ProbeRecord, Question


def intervene_stage(
    questions: Sequence[Question],
    records: Sequence[ProbeRecord],
    cfg: InterveneConfig,
    render: RenderConfig,
    out: str | Path,
    *,
    base: ModelSpec | None = None,
    inputs: Sequence[Path] = (),
    probe: ProbeConfig | None = None,
    pool: Sequence[Question] = (),
    tests: Sequence[Question] = (),
    batch_size: int = 32,
) -> dict[str, Any]:
    """Write OUT/groups.json, OUT/examples/<group>.jsonl and OUT/summary.json; returns the summary.
    Skipped when OUT's outputs are intact (outputs.py; `inputs`: the probe folder it read). Written
    self-instruct questions are answered as `probe` reads (demonstrations from `pool`) and may
    copy no question of `tests` or `pool` (nor of the IFT questions)."""
    out = Path(out)
    done = read_sealed(out, "summary.json", inputs)
    if done is not None:
        return done
    from iftscope.intervene.selfinstruct import needs_author

    writes = needs_author(cfg, questions)
    base_model = tokenizer = author = None
    if "self-explained" in render.styles or writes:
        if base is None:
            raise ValueError("style 'self-explained' and written self-instruct questions need the base model")
        base_model = base.load()
        tokenizer = base_model[1] if render.template == "chat" else None
    elif render.template == "chat":
        if base is None:
            raise ValueError("template 'chat' needs the model whose chat template renders the examples")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base.path)
    if writes:
        from iftscope.intervene.author import model_author

        author = model_author(
            *base_model, probe or ProbeConfig(), pool or questions, [q.question for q in [*tests, *pool]],
            max_new_tokens=cfg.generated_tokens, temperature=cfg.generated_temperature, batch_size=batch_size,
        )  # fmt: skip
    run_intervene(questions, records, out, cfg, render, base_model, tokenizer, author)
    seal(out, inputs)
    return read_json(out / "summary.json")  # as a resumed run reads it (key order included)
