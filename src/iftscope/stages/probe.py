"""The probe stage: load the model, score every question (through the score cache), write
records, summary and coverage into a folder. `iftscope probe`, `iftscope curate` and the study
all come through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iftscope.outputs import seal
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig, letter_token_ids
from iftscope.probe.runner import run_probe
from iftscope.stages.model import ModelSpec
from iftscope.types import Question


@dataclass(frozen=True)
class ProbeOutcome:
    """What a probe wrote (its summary.json) and how the score cache served it."""

    summary: dict[str, Any]
    cache_path: str | None = None
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass(frozen=True)
class CacheConfig:
    """The on-disk score cache (probe.cache): a rerun of the same model on the same prompts is free."""

    enabled: bool = True
    dir: str | None = None  # None: $IFTSCOPE_CACHE or ~/.cache/iftscope


def probe_stage(
    model: ModelSpec,
    questions: Sequence[Question],
    cfg: ProbeConfig,
    out: str | Path,
    *,
    pool: Sequence[Question] = (),
    batch_size: int = 32,
    cache: CacheConfig = CacheConfig(),
    truth: dict[str, bool] | None = None,
    data: Sequence[str] = (),
    label: str | None = None,
    progress: bool = True,
    inputs: Sequence[Path] = (),
) -> ProbeOutcome:
    """Probe `questions` (demonstrations from `pool`, default the questions) and write OUT/;
    `truth` (micro-world) adds agreement with ground truth. Returns the probe's summary; an
    interrupted probe resumes where it stopped. `data` and `label` (default: the model's path) name
    the question files and the model in the summary. OUT is sealed (outputs.py) with `inputs`."""
    from iftscope.models.identity import model_identity
    from iftscope.probe.cache import CachedScorer

    if cfg.backend == "lm-eval":  # lm-evaluation-harness scores (hf, vllm ...): docs/lm-eval.md
        from iftscope.stages.lmeval import lm_eval_probe_stage

        summary = lm_eval_probe_stage(
            model, questions, cfg, out, pool=pool, batch_size=batch_size, truth=truth, data=data, label=label
        )
        seal(out, inputs)
        return ProbeOutcome(summary)
    if cfg.backend != "native":
        raise ValueError(f"probe.backend: {cfg.backend!r} (allowed: native, lm-eval)")
    fmt = get_format(cfg.format)
    hf = model.scorer(batch_size)
    fmt = fmt.with_tokenizer(hf.tokenizer)
    identity = model_identity(model.path, model.adapter, model.dtype, hf.add_bos)
    scorer = CachedScorer(hf, identity, cache.dir) if cache.enabled else hf
    extra: dict[str, Any] = {
        "model": label or model.path,
        "model_identity": identity,
        "adapter": model.adapter,
        "add_bos": hf.add_bos,
        "data": [str(p) for p in data],
    }
    if fmt.mode == "letter":
        extra["scored_token_ids"] = letter_token_ids(scorer, fmt, max(len(q.choices) for q in questions))
    pool = list(pool) or list(questions)
    summary = run_probe(scorer, questions, pool, fmt, cfg, out, progress=progress, extra=extra, truth=truth)
    seal(out, inputs)
    if isinstance(scorer, CachedScorer):
        return ProbeOutcome(summary, str(scorer.path), scorer.hits, scorer.misses)
    return ProbeOutcome(summary)
