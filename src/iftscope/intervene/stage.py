"""The intervene stage's I/O: probe folder + questions in, groups and SFT examples out."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from statistics import mean
from typing import Any

from iftscope.intervene.groups import InterveneConfig, build_groups, candidate_pools
from iftscope.intervene.matching import composition, match_report
from iftscope.intervene.render import RenderConfig, render_group
from iftscope.runs import atomic_dir, atomic_write_json, read_jsonl
from iftscope.types import Group, ProbeRecord, Question, SFTExample


def read_probe_records(probe_dir: str | Path) -> list[ProbeRecord]:
    path = Path(probe_dir) / "records.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no probe records (run `iftscope probe` first, to completion)")
    return [ProbeRecord.from_json(r) for r in read_jsonl(path)]


def read_examples(path: str | Path, style: str | None = None) -> list[SFTExample]:
    """The SFT examples of one group's JSONL file, optionally of one style only."""
    rows = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            rows.append(SFTExample(**row))
        except TypeError as e:
            raise ValueError(f"{path}: row {n}: not an SFT example: {e}") from e
    return [r for r in rows if style is None or r.style == style]


def describe(
    groups: Sequence[Group], examples: dict[str, list[SFTExample]], questions=(), records=()
) -> dict[str, Any]:
    """What each group is made of: size, target kinds, the base model's confidence, letters, and
    (with the questions and probe records) its composition (intervene.matching.composition)."""
    by_q, by_r = {q.id: q for q in questions}, {r.question_id: r for r in records}
    out = {}
    for g in groups:
        out[g.name] = {
            "description": g.description,
            "size": len(g.items),
            "kinds": dict(Counter(it.kind for it in g.items)),
            "mean_base_confidence": round(mean(it.base_confidence for it in g.items), 4),
            "target_letters": dict(Counter(e.target_letter for e in examples[g.name] if e.target_letter)),
            "composition": composition(g, by_q, by_r),
        }
    return out


def _matching(questions, records, cfg: InterveneConfig, groups: Sequence[Group]) -> dict[str, Any]:
    """H's and I's base confidences, pools vs groups drawn (intervene.matching.match_report)."""
    by_name = {g.name: [it.base_confidence for it in g.items] for g in groups}
    return {
        "matched": cfg.match_confidence,
        **match_report(candidate_pools(questions, records, cfg), by_name),
    }


def _chat(render: RenderConfig, base_model, tokenizer):
    """The chat template's wrapper when the template is `chat` (from the tokenizer), else None."""
    if render.template != "chat":
        return None
    if tokenizer is None and base_model is None:
        raise ValueError("template 'chat' needs the model's tokenizer")
    from iftscope.intervene.render import chat_wrapper

    return chat_wrapper(tokenizer if tokenizer is not None else base_model[1])


def _explanations(
    groups: Sequence[Group], by_id: dict[str, Question], cfg: InterveneConfig, render: RenderConfig,
    base_model, chat,
) -> dict[tuple[str, int], str] | None:  # fmt: skip
    """The base model's own explanations of every item's target, when a style needs them."""
    if "self-explained" not in render.styles:
        return None
    if base_model is None:
        raise ValueError("style 'self-explained' needs the base model (it writes the explanations)")
    from iftscope.intervene.explain import generate_explanations

    wanted = [(by_id[it.question_id], it.target) for g in groups for it in g.items]
    return generate_explanations(
        *base_model, wanted, render.template, max_new_tokens=cfg.explanation_tokens,
        temperature=cfg.explanation_temperature, seed=cfg.seed, chat=chat,
    )  # fmt: skip


WRITTEN = "written.jsonl"  # the questions the base model wrote (self-instruct on real data)


def run_intervene(
    questions: Sequence[Question],
    records: Sequence[ProbeRecord],
    out: str | Path,
    cfg: InterveneConfig,
    render: RenderConfig,
    base_model=None,
    tokenizer=None,
    author=None,
) -> dict[str, Any]:
    """Write OUT/groups.json, OUT/examples/<group>.jsonl (every style), OUT/written.jsonl (the
    questions the model wrote, if any) and OUT/summary.json, all at once. `base_model` = (model,
    tokenizer) writes the explanations of style `self-explained` (intervene.explanation_tokens long,
    at intervene.explanation_temperature); the template `chat` uses the tokenizer's chat template,
    for the examples and the explanation prompts alike; `author` (intervene.written.Author) writes
    self-instruct's questions when they are written."""
    groups = build_groups(questions, records, cfg)
    generated = []
    if cfg.generated:
        from iftscope.intervene.selfinstruct import generated_groups

        generated = generated_groups(questions, records, len(groups[0].items), cfg, author)
        groups += [g.group for g in generated]
    written = [q for g in generated for q in g.questions]
    by_id = {q.id: q for q in [*questions, *written]}
    chat = _chat(render, base_model, tokenizer)
    explanations = _explanations(groups, by_id, cfg, render, base_model, chat)
    examples = {g.name: render_group(g, by_id, render, chat, explanations) for g in groups}
    summary = {
        "intervene": asdict(cfg),
        "render": asdict(render),
        "groups": describe(groups, examples, questions, records),
        "matching": _matching(questions, records, cfg, groups),
    }
    for g in generated:
        if g.writing is not None:
            summary["groups"][g.group.name]["writing"] = g.writing
    _write(out, groups, examples, written, summary)
    return summary


def _write(out, groups: Sequence[Group], examples, written: Sequence[Question], summary) -> None:
    """The stage's files, all or none (summary.json last)."""
    with atomic_dir(out) as tmp:
        (tmp / "examples").mkdir()
        for name, rows in examples.items():
            text = "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in rows)
            (tmp / "examples" / f"{name}.jsonl").write_text(text, encoding="utf-8")
        groups_json = [
            {"name": g.name, "description": g.description, "items": [it.to_json() for it in g.items]}
            for g in groups
        ]
        (tmp / "groups.json").write_text(json.dumps(groups_json, indent=1), encoding="utf-8")
        if written:
            text = "".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in written)
            (tmp / WRITTEN).write_text(text, encoding="utf-8")
        atomic_write_json(tmp / "summary.json", summary)


def group_questions(questions: Sequence[Question], folder: str | Path) -> dict[str, Question]:
    """Question id -> question for a groups folder's items: the data's and those the model wrote."""
    from iftscope.data import load_questions

    path = Path(folder) / WRITTEN
    written = load_questions(path) if path.exists() else []
    return {q.id: q for q in [*questions, *written]}
