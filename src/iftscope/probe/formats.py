"""Named, versioned prompt formats. Bump a version whenever the scores it gives could change.

A letter format scores the next token after the prompt, restricted to the option letters, with
the letter written exactly as its demonstrations teach it. A continuation format scores each
option's text as the continuation of a statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from iftscope.types import LETTERS, Question


@dataclass(frozen=True)
class PromptFormat:
    name: str
    version: int
    mode: str  # "letter" or "continuation"
    header: str  # "{domain}" is filled in; "" for none
    answer_cue: str  # what ends the prompt before the answer
    letter_prefix: str  # scored letter: "" for "Answer:C", " " for "Answer: C"
    demo_letter_prefix: str  # the letter as the demonstrations write it
    about: str
    render: Callable[[list[dict[str, str]]], str] | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def letter(self, i: int) -> str:
        return self.letter_prefix + LETTERS[i]

    def block(self, q: Question, choices: Sequence[str]) -> str:
        lines = [q.question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
        return "\n".join(lines) + "\n" + self.answer_cue

    def demonstration(self, q: Question) -> str:
        letter = self.demo_letter_prefix + LETTERS[q.answer]
        if self.name == "mmlu":
            return self.block(q, q.choices) + letter
        return self.block(q, q.choices) + f"{letter}. {q.answer_text}"

    def with_tokenizer(self, tokenizer) -> PromptFormat:
        """The chat format renders with the model's own chat template; other formats ignore this."""
        if self.name != "chat":
            return self
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("this model's tokenizer has no chat template; use --format paper or mmlu")
        bos = tokenizer.bos_token or ""

        def render(messages: list[dict[str, str]]) -> str:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return text[len(bos) :] if bos and text.startswith(bos) else text  # the scorer adds BOS

        return replace(self, render=render)

    def chat_turn(self, q: Question, choices: Sequence[str]) -> str:
        head = self.header.format(domain=(q.domain or "general knowledge").replace("_", " "))
        return f"{head}\n\n{self.block(q, choices)}"

    def letter_context(self) -> str:
        """What precedes the scored letter, to find the letter's token id."""
        if self.name == "chat":
            return self._chat([], Question("_", "?", ("x", "y"), 0), ("x", "y"))
        return self.answer_cue

    def _chat(self, demos: Sequence[Question], q: Question, choices: Sequence[str]) -> str:
        if self.render is None:
            raise ValueError("the chat format needs the model's tokenizer: call with_tokenizer first")
        messages = []
        for d in demos:
            messages += [
                {"role": "user", "content": self.chat_turn(d, d.choices)},
                {"role": "assistant", "content": self.letter(d.answer)},
            ]
        return self.render([*messages, {"role": "user", "content": self.chat_turn(q, choices)}])

    def letter_prompt(self, q: Question, choices: Sequence[str], demos: Sequence[Question]) -> str:
        if self.name == "chat":
            return self._chat(demos, q, choices)
        head = self.header.format(domain=(q.domain or "general knowledge").replace("_", " "))
        parts = ([head] if head else []) + [self.demonstration(d) for d in demos]
        return "\n\n".join(parts + [self.block(q, choices)])

    def continuation_context(self, q: Question, demos: Sequence[Question]) -> str:
        """k-shot context whose continuation is an option's text (lm-evaluation-harness's
        mmlu_continuation: the options are not listed)."""
        head = self.header.format(domain=(q.domain or "general knowledge").replace("_", " "))
        shots = [f"Question: {d.question.strip()}\n{self.answer_cue} {d.answer_text}" for d in demos]
        return "\n\n".join(
            ([head] if head else []) + shots + [f"Question: {q.question.strip()}\n{self.answer_cue}"]
        )

    def cloze_contexts(self, q: Question) -> list[str]:
        """Statements to continue, one view each: the question's own (the micro-world gives three
        paraphrases), else the question and the answer cue. `qa` asks the question as the plain
        SFT template does, so a tuned model is read the way it was trained."""
        if self.name == "qa":
            return [f"Question: {q.question.strip()}\n{self.answer_cue}"]
        return list(q.metadata.get("cloze_prompts") or [f"{q.question.strip()}\n{self.answer_cue}"])


PAPER_HEADER = "The following are multiple choice questions about {domain}. Please choose the correct answer."
CHAT_HEADER = "The following is a multiple choice question about {domain}."
MMLU_HEADER = "The following are multiple choice questions (with answers) about {domain}."

FORMATS: dict[str, PromptFormat] = {
    f.name: f
    for f in (
        PromptFormat(
            "paper",
            1,
            "letter",
            PAPER_HEADER,
            "Answer:",
            "",
            "",
            "Ren et al.'s prompt; scores the bare letter its demonstrations teach ('Answer:C')",
        ),
        PromptFormat(
            "paper-original",
            1,
            "letter",
            PAPER_HEADER,
            "Answer:",
            " ",
            "",
            "Ren et al.'s prompt scored as their code did: the space-prefixed letter (a flaw)",
        ),
        PromptFormat(
            "mmlu",
            1,
            "letter",
            MMLU_HEADER,
            "Answer:",
            " ",
            " ",
            "lm-evaluation-harness MMLU: 'Answer:' then ' A'",
        ),
        PromptFormat(
            "chat",
            1,
            "letter",
            CHAT_HEADER,
            "Answer with the letter of the correct option only.",
            "",
            "",
            "the model's own chat template: the question as a user turn, the letter as the first "
            "token of the assistant's reply (for instruction-tuned models)",
        ),
        PromptFormat(
            "continuation",
            1,
            "continuation",
            "The following are questions (with answers) about {domain}.",
            "Answer:",
            "",
            "",
            "lm-evaluation-harness mmlu_continuation: k-shot 'Question: ...\\nAnswer: text', each "
            "option's text scored as the continuation (options not listed)",
        ),
        PromptFormat(
            "qa",
            1,
            "continuation",
            "",
            "Answer:",
            "",
            "",
            "zero-shot 'Question: ...\\nAnswer:' (the plain SFT template), each option's text scored as "
            "the continuation: how a model tuned with that template is read",
        ),
        PromptFormat(
            "cloze",
            2,
            "continuation",
            "",
            "Answer:",
            "",
            "",
            "each option's text scored as the continuation of each of the question's statements",
        ),
    )
}


def get_format(name: str) -> PromptFormat:
    if name not in FORMATS:
        raise ValueError(f"unknown prompt format {name!r}; choose from {sorted(FORMATS)}")
    return FORMATS[name]
