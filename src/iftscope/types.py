"""The nouns that stages exchange, defined once as frozen dataclasses."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Question:
    """One multiple-choice question.

    `answer` is the 0-based index of the correct option in `choices`. `metadata` carries whatever
    the source had beyond the standard fields (the paper's `raw` record, the micro-world's person
    and attribute, a split label), so nothing is lost on the way through the stages.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    explanation: str | None = None
    domain: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(
                f"question {self.id!r}: answer {self.answer} is not an index of its "
                f"{len(self.choices)} choices"
            )

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]

    @property
    def answer_text(self) -> str:
        return self.choices[self.answer]

    def to_json(self) -> dict[str, Any]:
        """The paper's JSONL format (0-based `answer`), plus our `domain` and `metadata`."""
        out: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        if self.domain is not None:
            out["domain"] = self.domain
        if self.metadata:
            out["metadata"] = self.metadata
        return out


@dataclass(frozen=True)
class ProbeRecord:
    """What the base model believes about one question, aggregated over every probe view.

    `distribution` is over the question's options in their original order, averaged over demo
    sets and option permutations. `option_mass` is the probability the model put on the scored
    letter tokens (letter mode) or on the option texts as continuations (continuation mode) at all:
    a low value means the prompt did not elicit an answer and the distribution is unreliable.
    `gold_abs_prob` is the gold answer's probability over the whole vocabulary (the distribution
    times the mass): how often the model would *say* it, not only prefer it among the options.
    `known` is the probe's verdict under the rule named in its config (see probe.knowledge).
    """

    question_id: str
    domain: str | None
    gold: int
    distribution: tuple[float, ...]
    prediction: int
    correct: bool
    confidence: float
    gold_prob: float
    option_mass: float
    gold_abs_prob: float
    known: bool
    view_accuracy: float  # fraction of views whose own argmax was the gold option
    sampled_accuracy: float  # mean P(gold) of each view's options tempered at `temperature` (not sampled)
    category: str  # confidence category (probe.knowledge.CONFIDENCE_CATEGORIES; not SliCK's)
    format: str
    views: int

    def confidently_wrong(self, threshold: float = 0.5) -> bool:
        """The model prefers a wrong option with probability above `threshold`: the paper's
        Incompatible items, the ones curation drops and coverage reports."""
        return not self.correct and self.confidence > threshold

    def confidently_right(self, threshold: float = 0.5) -> bool:
        """The model prefers the gold option with probability above `threshold`."""
        return self.correct and self.confidence > threshold

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ProbeRecord:
        return cls(**{**row, "distribution": tuple(row["distribution"])})


@dataclass(frozen=True)
class GroupItem:
    """One question in an IFT group and the answer the group teaches for it.

    `kind` says where the target comes from: "gold" (the data's answer), "self" (the base model's
    own prediction: self-aligning) or "counterfactual" (a wrong option chosen at random, micro-world).
    """

    question_id: str
    target: int  # index into the question's options, in their original order
    kind: str
    gold: int | None  # None: no gold exists (a question the base model wrote itself, self-instruct)
    base_prediction: int
    base_confidence: float

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class Group:
    """An IFT group: items chosen so that groups differ in one factor only."""

    name: str
    description: str
    items: tuple[GroupItem, ...]
    open_book: bool = False  # the supporting fact goes in the prompt (the paper's contextualized I)
    rewordings: int = 1  # each item taught in this many wordings (knowledge augmentation, I-augmented)


@dataclass(frozen=True)
class SFTExample:
    """A rendered training example: loss goes on `response` only (plus EOS)."""

    id: str
    group: str
    question_id: str
    prompt: str
    response: str
    target_text: str
    target_letter: str | None  # None when the options are not shown
    style: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
