"""Turn one raw row (from JSONL, CSV or a dataset) into a validated Question.

All formats meet here, so every loader rejects the same mistakes with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iftscope.data.problems import Problem
from iftscope.types import LETTERS, Question

STANDARD_FIELDS = {"id", "question", "choices", "answer", "explanation", "domain", "subject"}


@dataclass(frozen=True)
class Where:
    path: str
    line: int | None

    def problem(self, field: str | None, message: str, severity: str = "error") -> Problem:
        return Problem(self.path, self.line, field, message, severity)


def _letter_columns(row: dict[str, Any]) -> list[str]:
    """Option columns A, B, C, ... present in an MMLU-style row, in order."""
    cols = []
    for letter in LETTERS:
        if letter in row:
            cols.append(letter)
        else:
            break
    return cols


def _choices(row: dict[str, Any], where: Where) -> tuple[list[str] | None, list[Problem]]:
    if "choices" in row:
        raw, field = row["choices"], "choices"
        if not isinstance(raw, list | tuple):
            return None, [where.problem(field, f"expected a list of option texts, got {type(raw).__name__}")]
        names = [f"choices[{i}]" for i in range(len(raw))]
    else:
        cols = _letter_columns(row)
        if not cols:
            return None, [
                where.problem("choices", "missing: give a 'choices' list or option columns A, B, C, D")
            ]
        raw, names = [row[c] for c in cols], cols
    problems = []
    if len(raw) < 2:
        problems.append(where.problem("choices", f"expected at least 2 options, got {len(raw)}"))
    for name, text in zip(names, raw, strict=True):
        if not isinstance(text, str):
            problems.append(
                where.problem(name, f"expected option text (a string), got {type(text).__name__}")
            )
        elif not text.strip():
            problems.append(where.problem(name, "option text is empty"))
    return (None if problems else list(raw)), problems


def _answer(raw: Any, n: int, where: Where) -> tuple[int | None, Problem | None]:
    expect = f"a 0-based index 0..{n - 1} or a letter {LETTERS[0]}..{LETTERS[n - 1]}"
    if isinstance(raw, bool) or raw is None:
        return None, where.problem("answer", f"expected {expect}, got {raw!r}")
    if isinstance(raw, int):
        if 0 <= raw < n:
            return raw, None
        return None, where.problem(
            "answer", f"index {raw} is out of range for {n} options (expected {expect})"
        )
    if isinstance(raw, str):
        s = raw.strip()
        if len(s) == 1 and s.upper() in LETTERS:
            idx = LETTERS.index(s.upper())
            if idx < n:
                return idx, None
            return None, where.problem(
                "answer", f"letter {s!r} is out of range for {n} options (expected {expect})"
            )
    return None, where.problem("answer", f"expected {expect}, got {type(raw).__name__} {raw!r}")


def row_to_question(
    row: dict[str, Any], where: Where, default_id: str, default_domain: str | None
) -> tuple[Question | None, list[Problem]]:
    """Validate a row; return the Question (or None) and every problem found."""
    problems: list[Problem] = []
    question = row.get("question")
    if "question" not in row:
        problems.append(where.problem("question", "missing"))
    elif not isinstance(question, str):
        problems.append(where.problem("question", f"expected a string, got {type(question).__name__}"))
    elif not question.strip():
        problems.append(where.problem("question", "question text is empty"))
    choices, choice_problems = _choices(row, where)
    problems += choice_problems
    answer = None
    if "answer" not in row:
        problems.append(where.problem("answer", "missing"))
    elif choices is not None:
        answer, p = _answer(row["answer"], len(choices), where)
        if p:
            problems.append(p)
    explanation = row.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        problems.append(where.problem("explanation", f"expected a string, got {type(explanation).__name__}"))
    if problems or choices is None or answer is None:
        return None, problems
    if len({c.strip() for c in choices}) < len(choices):
        problems.append(where.problem("choices", "two options have the same text", "warning"))
    qid = row.get("id", default_id)
    domain = row.get("domain") or row.get("subject") or default_domain
    extra = {k: v for k, v in row.items() if k not in STANDARD_FIELDS and k not in LETTERS}
    metadata = extra.pop("metadata", None) or {}
    if extra:
        metadata = {**extra, **metadata}
    q = Question(
        id=str(qid),
        question=question,
        choices=tuple(choices),
        answer=answer,
        explanation=explanation or None,
        domain=str(domain) if domain is not None else None,
        metadata=metadata,
    )
    return q, problems
