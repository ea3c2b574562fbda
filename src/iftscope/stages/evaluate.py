"""The evaluate stage: one model on every test set, its consistency with a reference (the base
model's records), and optional extras; writes records-<set>.jsonl and metrics.json (last).

`iftscope evaluate` and the study both come through here. The base model is read as the probe
reads it; tuned models zero-shot in the format they were trained with (the study decides which
ProbeConfig each gets). In a study every model is also read with the other instrument (the base in
the tuned models' QA format, each tuned model as the probe reads the base: folders `QA` and `PROBE`
under its eval folder), so consistency compares like with like (`with_instrument`).

With `backend: lm-eval` the sets are scored by lm-evaluation-harness from the model's folder (a
tuned LoRA job: the base plus its adapter; a full fine-tuning: its saved model) and imported into
the same records and metrics; the extras (generation, memorisation ...) still use iftscope's scorer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from iftscope.evaluate.qa import score_sets, set_metrics
from iftscope.models.scorer import HFScorer, TieCount
from iftscope.outputs import read_sealed, seal
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig
from iftscope.runs import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl
from iftscope.stages.model import ModelSpec
from iftscope.types import ProbeRecord, Question

QA, PROBE = "qa", "probe"  # the other instrument's subfolder: the base in QA format, a tuned model probed

# extras(scorer, records per set) -> metrics to merge in (e.g. `_memorisation`, a set's `generation`)
Extras = Callable[[HFScorer, dict[str, list[ProbeRecord]]], dict[str, Any]]


def read_records(path: str | Path) -> list[ProbeRecord]:
    """Records written by the probe or the evaluate stage."""
    return [ProbeRecord.from_json(r) for r in read_jsonl(path)]


def read_reference(folder: str | Path, sets: Sequence[str]) -> dict[str, list[ProbeRecord]]:
    """An earlier evaluation's records (the base model's), for consistency."""
    return {s: read_records(Path(folder) / f"records-{s}.jsonl") for s in sets}


def evaluate_stage(
    model: ModelSpec,
    sets: dict[str, Sequence[Question]],
    cfg: ProbeConfig,
    out: str | Path,
    *,
    pool: Sequence[Question] = (),
    reference: dict[str, list[ProbeRecord]] | None = None,
    extras: Extras | None = None,
    batch_size: int = 64,
    loaded: tuple[Any, Any] | None = None,
    inputs: Sequence[Path] = (),
) -> dict[str, Any]:
    """Score `model` on `sets` in `cfg.format`; skipped when OUT/metrics.json exists and OUT's
    outputs are intact (outputs.py; `inputs`: the stage folders this one is computed from). Returns
    the metrics as written (fresh and resumed runs read the same JSON back)."""
    out = Path(out)
    done = read_sealed(out, "metrics.json", inputs)
    if done is not None:
        return done

    # `loaded`: (model, tokenizer) already in memory (a job's model just trained), not read again
    def scorer_now() -> HFScorer:
        return HFScorer(*loaded, batch_size=batch_size) if loaded else model.scorer(batch_size)

    if cfg.backend == "lm-eval":  # scored by lm-evaluation-harness, extras natively (docs/lm-eval.md)
        records, metrics = _lm_eval_scores(model, sets, cfg, out, pool, reference, batch_size)
        scorer = scorer_now() if extras is not None else None  # loaded after lm-eval let go of its copy
    else:
        scorer = scorer_now()
        records, metrics = _native_scores(scorer, sets, cfg, pool, reference)
    if extras is not None:
        for key, value in extras(scorer, records).items():
            if key in metrics:
                metrics[key].update(value)
            else:
                metrics[key] = value
    for s, rs in records.items():
        atomic_write_jsonl(out / f"records-{s}.jsonl", (r.to_json() for r in rs))
    atomic_write_json(out / "metrics.json", metrics)
    seal(out, inputs)
    return read_json(out / "metrics.json")


Scores = tuple[dict[str, list[ProbeRecord]], dict[str, Any]]  # records and metrics per set


def _native_scores(scorer: HFScorer, sets, cfg: ProbeConfig, pool, reference) -> Scores:
    """Every set scored by iftscope's scorer, set by set."""
    fmt = get_format(cfg.format).with_tokenizer(scorer.tokenizer)
    records, metrics = {}, {}
    for name, questions in sets.items():
        counted = TieCount(scorer)
        records.update(score_sets(counted, {name: questions}, fmt, cfg, pool))
        metrics[name] = set_metrics(records[name], reference[name] if reference else None)
        if counted.tie_rate is not None:  # letter formats: rows whose top options tie exactly
            metrics[name]["tie_rate"] = counted.tie_rate
    return records, metrics


def _lm_eval_scores(
    model: ModelSpec, sets, cfg: ProbeConfig, out: Path, pool, reference, batch_size: int
) -> Scores:
    """Every set scored by lm-evaluation-harness in one run (the model read from its folder, a
    tuned model's adapter given as its model type takes one); OUT/lm-eval keeps the task folder,
    the samples and provenance.json."""
    from iftscope.stages.lmeval import lm_eval_records

    imported, provenance = lm_eval_records(model, sets, pool, cfg, out / "lm-eval", batch_size)
    records, metrics = {}, {}
    for name in sets:
        records[name] = imported[name].records
        metrics[name] = set_metrics(records[name], reference[name] if reference else None)
        if imported[name].tie_rate is not None:
            metrics[name]["tie_rate"] = imported[name].tie_rate
    atomic_write_json(out / "lm-eval" / "provenance.json", provenance)
    return records, metrics


def with_instrument(
    other: dict[str, Any], mixed_reference: dict[str, list[ProbeRecord]] | None = None
) -> Extras:
    """Extras that store a tuned model's reading with the base model's instrument (`other`: the
    probe-instrument metrics per set, consistency probe-vs-probe) beside its QA reading, as
    `<set>.probe`; with `mixed_reference` (the base's probe records) also `<set>.consistency_mixed`:
    the paper's mixed comparison (base by its probe vs tuned in QA format), kept labelled."""

    def extras(scorer: HFScorer, records: dict[str, list[ProbeRecord]]) -> dict[str, Any]:
        out: dict[str, Any] = {s: {"probe": other[s]} for s in records if s in other}
        for s, rs in records.items() if mixed_reference else ():
            mixed = set_metrics(rs, mixed_reference[s]).get("consistency")
            out.setdefault(s, {})["consistency_mixed"] = mixed
        return out

    return extras


def chain(*parts: Extras | None) -> Extras:
    """Several extras as one (later keys of one set update earlier ones)."""

    def extras(scorer: HFScorer, records: dict[str, list[ProbeRecord]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in parts:
            for key, value in (part(scorer, records) if part else {}).items():
                if isinstance(value, dict) and isinstance(out.get(key), dict):
                    out[key] = {**out[key], **value}
                else:
                    out[key] = value
        return out

    return extras
