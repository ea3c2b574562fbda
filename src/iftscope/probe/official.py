"""Probe records from the output of Ren et al.'s official probe code (eval/my_domain_eval.py).

Each line is the question as the code read it (question, choices, 0-based answer, id ...) plus
`probs` (softmax over the option letters' logits at the last position; the letters tokenised on
their own, so the space-prefixed letter: our `paper-original` format), `pred` (argmax), `correct`,
`golden_prob` and `pred_prob`. The file is checked for being what the code writes (probs a
distribution over the choices, pred its argmax, correct = pred == answer, golden_prob and pred_prob
its entries), so a file of another shape, or out of step with its questions, is an error naming
the line. The code kept no probability mass on the options: `option_mass` and `gold_abs_prob` are
NaN, and the known rule must be one that does not need them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from iftscope.data.loaders import default_domain
from iftscope.data.records import Where, row_to_question
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig, record_from_views
from iftscope.types import ProbeRecord, Question

OFFICIAL_FORMAT = "paper-original"  # the space-prefixed letter the code scored
TOLERANCE = 1e-4  # the code saved float32 probabilities


def official_domain(path: Path) -> str:
    """medmcqa-logits-shot5-train-vicuna0.jsonl -> medmcqa (the code's --task), else by the path."""
    m = re.match(r"^(.+?)-logits-shot\d+-", path.stem)
    return m.group(1) if m else default_domain(path)


def _check(row: dict[str, Any], q: Question, where: str) -> list[float]:
    """The row's probs, after checking the row says what the official code would have written."""
    probs = row.get("probs")
    if isinstance(probs, str) or row.get("golden_prob") == -1:
        raise ValueError(
            f"{where}: probs: generation-mode output (a generated text); import the logits mode's"
        )
    if not isinstance(probs, list) or len(probs) != len(q.choices):
        raise ValueError(
            f"{where}: probs: expected {len(q.choices)} probabilities (one per choice), got {probs!r}"
        )
    if not all(isinstance(p, int | float) and math.isfinite(p) and p >= 0 for p in probs):
        raise ValueError(f"{where}: probs: not all finite non-negative numbers: {probs}")
    if abs(sum(probs) - 1) > TOLERANCE * len(probs):
        raise ValueError(f"{where}: probs: sum to {sum(probs):.6f}, not 1")
    pred = row.get("pred")
    if not isinstance(pred, int) or not 0 <= pred < len(probs) or probs[pred] < max(probs):
        raise ValueError(f"{where}: pred: {pred!r} is not the argmax of probs {probs}")
    if "correct" in row and bool(row["correct"]) != (pred == q.answer):
        raise ValueError(f"{where}: correct: {row['correct']!r} but pred {pred} and answer {q.answer}")
    for key, i in (("golden_prob", q.answer), ("pred_prob", pred)):
        if key in row and abs(float(row[key]) - probs[i]) > TOLERANCE:
            raise ValueError(f"{where}: {key}: {row[key]} but probs[{i}] is {probs[i]}")
    return [float(p) for p in probs]


def read_official(
    path: str | Path,
    known_rule: str = "confident",
    threshold: float = 0.5,
    domain: str | None = None,
    shots: int = 5,
) -> tuple[list[Question], list[ProbeRecord], ProbeConfig]:
    """(questions, records, the config they stand for) of one output file of the official code."""
    if known_rule == "generative":
        raise ValueError("known rule 'generative' needs the probability mass on the options, which the "
                         "official code did not save: use confident (the paper's) or argmax")  # fmt: skip
    path = Path(path)
    cfg = ProbeConfig(OFFICIAL_FORMAT, shots, demos="first", known_rule=known_rule, known_threshold=threshold)
    fmt, dom = get_format(OFFICIAL_FORMAT), domain or official_domain(path)
    questions, records, seen = [], [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not JSON ({e.msg})") from None
        q, problems = row_to_question(row, Where(str(path), n), str(row.get("id", f"{dom}-{n}")), dom)
        errors = [p for p in problems if p.severity == "error"]
        if q is None or errors:
            raise ValueError(str(errors[0]) if errors else f"{where}: not a question")
        if q.id in seen:
            raise ValueError(f"{where}: id: duplicate id {q.id!r}")
        seen.add(q.id)
        dist = np.array([_check(row, q, where)])
        questions.append(q)
        records.append(record_from_views(q, dist / dist.sum(), np.array([math.nan]), fmt, cfg))
    if not records:
        raise ValueError(f"{path}: no questions")
    return questions, records, cfg
