"""The probe as lm-evaluation-harness tasks, and lm-eval's logged samples back as probe records.

Export: one document per question per view (demonstration set x option rotation, or statement),
holding the fully rendered context our probe scores (`prompt`) and the exact continuations it
scores (`choices`: the letters as the format writes them, or " " + each option's text), with
`target_delimiter: ""`. lm-eval's loglikelihood requests are then exactly our scorer's requests,
whatever backend (hf, vllm ...) answers them. Import: the logged log-likelihoods of each view,
softmaxed over the options, mapped back to the original option order and averaged over views as
`probe.knowledge.probe` does (`record_from_views`), so the records feed groups and analysis.
No file I/O here but the task folder's text (probe.lmeval_io writes and reads files).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from iftscope.probe.formats import LETTER, PromptFormat, get_format
from iftscope.probe.knowledge import ProbeConfig, choose_demos, probe_views, record_from_views, view_contexts
from iftscope.types import ProbeRecord, Question

EXPORT_VERSION = 1
NORMALISABLE = ("sum", "char")  # lm-eval logs no token counts: "token" normalisation cannot be rebuilt


def view_docs(
    fmt: PromptFormat, q: Question, index: int, pool: Sequence[Question], cfg: ProbeConfig, set_name: str
) -> list[dict[str, Any]]:
    """The documents of one question: one per view, as the native probe would score it."""
    views = probe_views(fmt, [q], cfg)
    meta = json.dumps({"version": EXPORT_VERSION, "format": fmt.id, "probe": asdict(cfg)}, sort_keys=True)
    n = len(q.choices)
    docs = []
    for v, (s, r) in enumerate(views):
        rotated = q.choices[r:] + q.choices[:r]
        if fmt.mode == LETTER:
            demos = choose_demos(q, pool, cfg, s) if cfg.shots else []
            prompt, choices = fmt.letter_prompt(q, rotated, demos), [fmt.letter(i) for i in range(n)]
        else:
            (prompt,) = view_contexts(fmt, [q], pool, cfg, s)
            choices = [" " + c for c in rotated]
        docs.append(
            {
                "prompt": prompt,
                "choices": choices,
                "answer": (q.answer - r) % n,  # the gold option's place in this view's order
                "set": set_name,
                "index": index,
                "question_id": q.id,
                "question": q.question,
                "domain": q.domain,
                "options": list(q.choices),
                "gold": q.answer,
                "view": v,
                "views": len(views),
                "rotation": r,
                "iftscope": meta,
            }
        )
    return docs


def task_docs(
    questions: Sequence[Question],
    pool: Sequence[Question],
    fmt: PromptFormat,
    cfg: ProbeConfig,
    set_name: str,
) -> list[dict[str, Any]]:
    """Every view of every question of a set, in question order."""
    check_exportable(fmt, cfg)
    return [
        d for i, q in enumerate(questions) for d in view_docs(fmt, q, i, pool or questions, cfg, set_name)
    ]


def check_exportable(fmt: PromptFormat, cfg: ProbeConfig) -> None:
    if fmt.mode != LETTER and cfg.normalise not in NORMALISABLE:
        raise ValueError(
            f"probe.normalise {cfg.normalise!r} cannot go through lm-eval (its samples log no token "
            f"counts); use {' or '.join(NORMALISABLE)}"
        )
    if fmt.uses_chat_template and fmt.render is None:
        raise ValueError(f"format {fmt.id} renders with the model's chat template: give the tokenizer")


def task_yaml(task: str, data_file: str) -> str:
    """An lm-eval task whose requests are the documents' own (context, continuation) pairs."""
    return (
        f"# written by iftscope export lm-eval (version {EXPORT_VERSION}); docs/lm-eval.md\n"
        f"task: {task}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(data_file)}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "num_fewshot: 0  # the demonstrations are in each prompt, as the probe drew them\n"
        "doc_to_text: prompt\n"
        "doc_to_choice: choices\n"
        "doc_to_target: answer\n"
        'target_delimiter: ""  # the choices are the exact continuations scored\n'
        "metric_list:\n  - metric: acc\n"
        f"metadata:\n  version: {EXPORT_VERSION}\n"
    )


def group_yaml(group: str, tasks: Sequence[str]) -> str:
    listed = "".join(f"  - {t}\n" for t in tasks)
    return (
        f"group: {group}\ntask:\n{listed}"
        "aggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\n"
        f"metadata:\n  version: {EXPORT_VERSION}\n"
    )


def _loglikelihoods(sample: dict[str, Any]) -> list[float]:
    """Per choice, the logged log-likelihood: in memory [(ll, greedy)] or [[ll, greedy]] per
    request; in a --log_samples file the same, with every number written as a string."""
    out = []
    for resp in sample["resps"]:
        item = resp
        while isinstance(item, list | tuple) and item and isinstance(item[0], list | tuple):
            item = item[0]  # [[ll, greedy]] -> [ll, greedy]
        out.append(float(item[0] if isinstance(item, list | tuple) else item))
    return out


def _view(doc: dict[str, Any], lls: list[float], mode: str, cfg: ProbeConfig) -> tuple[np.ndarray, float]:
    """One view's distribution in original option order and its probability mass on the options."""
    ll = np.array(lls, dtype=np.float64)
    mass = float(np.exp(ll).sum())
    if mode != LETTER and cfg.normalise == "char":
        trailing = len(doc["prompt"]) - len(doc["prompt"].rstrip())  # moves into the continuation
        ll = ll / np.array([trailing + len(c) for c in doc["choices"]])
    d = np.exp(ll - ll.max())
    d /= d.sum()
    n, r = len(d), int(doc["rotation"])
    back = np.zeros(n)
    back[[(j + r) % n for j in range(n)]] = d
    return back, mass


def _tied(lls: list[float]) -> bool:
    """The two highest log-likelihoods exactly equal (models.scorer.LetterScores.tied)."""
    top = sorted(lls)[-2:]
    return len(top) == 2 and top[0] == top[1]


def _settings(doc: dict[str, Any], where: str) -> tuple[PromptFormat, ProbeConfig]:
    meta = json.loads(doc["iftscope"])
    if meta.get("version") != EXPORT_VERSION:
        raise ValueError(
            f"{where}: exported by iftscope export version {meta.get('version')}, not {EXPORT_VERSION}"
        )
    name, _, version = meta["format"].partition("@")
    fmt = get_format(name)
    if fmt.id != meta["format"]:
        raise ValueError(f"{where}: format {meta['format']} was exported; this iftscope has {fmt.id}")
    known = {f.name for f in fields(ProbeConfig)}
    return fmt, ProbeConfig(**{k: v for k, v in meta["probe"].items() if k in known})


@dataclass(frozen=True)
class ImportedSet:
    """One exported question set read back: its questions and records in order, and the format
    and probe settings it was exported with."""

    questions: list[Question]
    records: list[ProbeRecord]
    format: PromptFormat
    config: ProbeConfig
    tied: list[bool] = field(default_factory=list)  # letter formats: per view scored, top two tie

    @property
    def tie_rate(self) -> float | None:
        """Views whose two highest log-likelihoods are exactly equal / views scored (letter formats:
        the native scorer's `tie_rate`); None for continuation formats."""
        return sum(self.tied) / len(self.tied) if self.format.mode == LETTER and self.tied else None


def records_from_samples(samples: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, ImportedSet]:
    """set name -> its questions and probe records in question order, from (where, sample) pairs
    of tasks written by `task_docs`."""
    by_question: dict[tuple[str, int], dict[int, tuple[dict, list[float]]]] = {}
    for where, sample in samples:
        doc = sample.get("doc") or {}
        if "iftscope" not in doc:
            raise ValueError(
                f"{where}: not a sample of a task written by iftscope export lm-eval (no doc.iftscope)"
            )
        lls = _loglikelihoods(sample)
        if len(lls) != len(doc["choices"]) or not all(math.isfinite(x) for x in lls):
            raise ValueError(f"{where}: {len(lls)} finite log-likelihoods for {len(doc['choices'])} choices")
        by_question.setdefault((doc["set"], int(doc["index"])), {})[int(doc["view"])] = (doc, lls)
    out: dict[str, ImportedSet] = {}
    for (set_name, _), views in sorted(by_question.items()):
        first = next(iter(views.values()))[0]
        if sorted(views) != list(range(first["views"])):
            raise ValueError(
                f"set {set_name}, question {first['question_id']}: views {sorted(views)} of "
                f"{first['views']} logged (was lm-eval run with --limit, or a file left out?)"
            )
        fmt, cfg = _settings(first, f"set {set_name}, question {first['question_id']}")
        scored = [_view(views[v][0], views[v][1], fmt.mode, cfg) for v in range(first["views"])]
        q = Question(
            first["question_id"], first["question"], tuple(first["options"]), int(first["gold"]),
            domain=first["domain"],
        )  # fmt: skip
        dists, masses = np.stack([d for d, _ in scored]), np.array([m for _, m in scored])
        got = out.setdefault(set_name, ImportedSet([], [], fmt, cfg))
        got.questions.append(q)
        got.records.append(record_from_views(q, dists, masses, fmt, cfg))
        got.tied.extend(_tied(views[v][1]) for v in range(first["views"]))
    return out
