"""The plain question-and-answer prompt, defined once.

SFT's `plain` template (intervene.render) trains on it and the probe's `qa` format (probe.formats)
scores with it, so a tuned model is read exactly the way it was trained. Both import it from here:
neither package imports the other.
"""

from __future__ import annotations

QUESTION_PREFIX = "Question: "
ANSWER_CUE = "Answer:"


def ask(question: str, answer_cue: str = ANSWER_CUE, question_prefix: str = QUESTION_PREFIX) -> str:
    """The question on one line, the cue the answer follows on the next ('Question: ...\\nAnswer:')."""
    return f"{question_prefix}{question}\n{answer_cue}"


def plain_prompt(instruction: str, context: str | None = None) -> str:
    """The plain SFT prompt around an instruction, an open-book context (if any) on the line before."""
    return (f"{context}\n" if context else "") + ask(instruction)
