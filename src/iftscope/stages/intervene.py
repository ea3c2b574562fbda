"""The intervene stage: IFT groups from the probe's records, rendered as SFT examples; skipped
when OUT/summary.json exists. Loads the base model only when a style or template needs it
(self-explained responses are written by it; the chat template is its tokenizer's)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.intervene.stage import run_intervene
from iftscope.outputs import read_sealed, seal
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
) -> dict[str, Any]:
    """Write OUT/groups.json, OUT/examples/<group>.jsonl and OUT/summary.json; returns the summary.
    Skipped when OUT's outputs are intact (outputs.py; `inputs`: the probe folder it read)."""
    out = Path(out)
    done = read_sealed(out, "summary.json", inputs)
    if done is not None:
        return done
    base_model = tokenizer = None
    if "self-explained" in render.styles:
        if base is None:
            raise ValueError("style 'self-explained' needs the base model (it writes the explanations)")
        base_model = base.load()
    elif render.template == "chat":
        if base is None:
            raise ValueError("template 'chat' needs the model whose chat template renders the examples")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base.path)
    run_intervene(questions, records, out, cfg, render, base_model, tokenizer)
    seal(out, inputs)
    return read_json(out / "summary.json")  # as a resumed run reads it (key order included)
