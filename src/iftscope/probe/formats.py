"""Named, versioned prompt formats, each a registry entry that says what it scores and how.

A letter format scores the next token after the prompt, restricted to the option letters, with
the letter written exactly as its demonstrations teach it. A continuation format scores each
option's text as the continuation of a context: k-shot questions (`views="demo-sets"`) or
zero-shot statements (`views="statements"`). Code reads these fields, never a format's name.
Bump a version whenever the scores a format gives could change: `id` is written into records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from iftscope.prompts import ANSWER_CUE, QUESTION_PREFIX, ask
from iftscope.types import LETTERS, Question

LETTER, CONTINUATION = "letter", "continuation"
# What a probe averages over: each view is one scoring of every question.
DEMO_SETS_X_PERMUTATIONS = "demo-sets x permutations"  # demonstration sets x cyclic option rotations
DEMO_SETS = "demo-sets"  # demonstration sets (the options are not listed, so order cannot matter)
STATEMENTS = "statements"  # the question's statements, zero-shot
VIEWS = {LETTER: (DEMO_SETS_X_PERMUTATIONS,), CONTINUATION: (DEMO_SETS, STATEMENTS)}
DEMO_LETTER, DEMO_LETTER_TEXT = "letter", "letter. text"  # how a demonstration writes its answer


@dataclass(frozen=True, kw_only=True)
class PromptFormat:
    name: str
    version: int
    about: str
    mode: str  # LETTER or CONTINUATION
    views: str  # one of VIEWS[mode]
    header: str = ""  # "{domain}" is filled in; "" for none
    question_prefix: str = QUESTION_PREFIX  # before the question in a continuation context
    answer_cue: str = ANSWER_CUE  # what ends the prompt before the answer
    letter_prefix: str = ""  # scored letter: "" for "Answer:C", " " for "Answer: C"
    demo_letter_prefix: str = ""  # the letter as the demonstrations write it
    demo_answer: str = DEMO_LETTER_TEXT  # a demonstration's answer: DEMO_LETTER or DEMO_LETTER_TEXT
    uses_chat_template: bool = False  # prompts go through the model's chat template (with_tokenizer)
    own_statements: bool = False  # statements: the question's own (metadata cloze_prompts) if it has them
    render: Callable[[list[dict[str, str]]], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """A misdeclared entry fails when the registry is built, not halfway through a probe."""
        if self.views not in VIEWS.get(self.mode, ()):
            raise ValueError(f"format {self.name!r}: views {self.views!r} with mode {self.mode!r}; see VIEWS")
        if self.demo_answer not in (DEMO_LETTER, DEMO_LETTER_TEXT):
            raise ValueError(f"format {self.name!r}: unknown demo_answer {self.demo_answer!r}")

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def zero_shot_only(self) -> bool:
        """Statements are scored without demonstrations."""
        return self.views == STATEMENTS

    def letter(self, i: int) -> str:
        return self.letter_prefix + LETTERS[i]

    def block(self, q: Question, choices: Sequence[str]) -> str:
        lines = [q.question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
        return "\n".join(lines) + "\n" + self.answer_cue

    def demonstration(self, q: Question) -> str:
        letter = self.demo_letter_prefix + LETTERS[q.answer]
        answer = letter if self.demo_answer == DEMO_LETTER else f"{letter}. {q.answer_text}"
        return self.block(q, q.choices) + answer

    def with_tokenizer(self, tokenizer) -> PromptFormat:
        """A chat-template format renders with the model's own chat template; other formats ignore this."""
        if not self.uses_chat_template:
            return self
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("this model's tokenizer has no chat template; use --format paper or mmlu")
        bos = tokenizer.bos_token or ""

        def render(messages: list[dict[str, str]]) -> str:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return text[len(bos) :] if bos and text.startswith(bos) else text  # the scorer adds BOS

        return replace(self, render=render)

    def _head(self, q: Question) -> str:
        return self.header.format(domain=(q.domain or "general knowledge").replace("_", " "))

    def chat_turn(self, q: Question, choices: Sequence[str]) -> str:
        return f"{self._head(q)}\n\n{self.block(q, choices)}"

    def letter_context(self) -> str:
        """What precedes the scored letter, to find the letter's token id."""
        if self.uses_chat_template:
            return self._chat([], Question("_", "?", ("x", "y"), 0), ("x", "y"))
        return self.answer_cue

    def _chat(self, demos: Sequence[Question], q: Question, choices: Sequence[str]) -> str:
        if self.render is None:
            raise ValueError(f"format {self.id} needs the model's tokenizer: call with_tokenizer first")
        messages = []
        for d in demos:
            messages += [
                {"role": "user", "content": self.chat_turn(d, d.choices)},
                {"role": "assistant", "content": self.letter(d.answer)},
            ]
        return self.render([*messages, {"role": "user", "content": self.chat_turn(q, choices)}])

    def letter_prompt(self, q: Question, choices: Sequence[str], demos: Sequence[Question]) -> str:
        if self.uses_chat_template:
            return self._chat(demos, q, choices)
        head = self._head(q)
        parts = ([head] if head else []) + [self.demonstration(d) for d in demos]
        return "\n\n".join(parts + [self.block(q, choices)])

    def _ask(self, q: Question) -> str:
        return ask(q.question.strip(), self.answer_cue, self.question_prefix)

    def continuation_context(self, q: Question, demos: Sequence[Question]) -> str:
        """k-shot context whose continuation is an option's text (lm-evaluation-harness's
        mmlu_continuation: the options are not listed)."""
        head = self._head(q)
        shots = [f"{self._ask(d)} {d.answer_text}" for d in demos]
        return "\n\n".join(([head] if head else []) + shots + [self._ask(q)])

    def cloze_contexts(self, q: Question) -> list[str]:
        """The statements a `statements` format continues, one view each: the question's own when
        `own_statements` (the micro-world gives three paraphrases), else the question and the cue."""
        own = q.metadata.get("cloze_prompts") if self.own_statements else None
        return list(own or [self._ask(q)])


PAPER_HEADER = "The following are multiple choice questions about {domain}. Please choose the correct answer."
CHAT_HEADER = "The following is a multiple choice question about {domain}."
MMLU_HEADER = "The following are multiple choice questions (with answers) about {domain}."


def _registry(*formats: PromptFormat) -> dict[str, PromptFormat]:
    """name -> entry; two entries with one name would silently shadow each other."""
    out: dict[str, PromptFormat] = {}
    for f in formats:
        if f.name in out:
            raise ValueError(f"prompt format {f.name!r} registered twice")
        out[f.name] = f
    return out


FORMATS: dict[str, PromptFormat] = _registry(
    PromptFormat(
        name="paper",
        version=1,
        mode=LETTER,
        views=DEMO_SETS_X_PERMUTATIONS,
        header=PAPER_HEADER,
        about="Ren et al.'s prompt; scores the bare letter its demonstrations teach ('Answer:C')",
    ),
    PromptFormat(
        name="paper-original",
        version=1,
        mode=LETTER,
        views=DEMO_SETS_X_PERMUTATIONS,
        header=PAPER_HEADER,
        letter_prefix=" ",
        about="Ren et al.'s prompt scored as their code did: the space-prefixed letter (a flaw)",
    ),
    PromptFormat(
        name="mmlu",
        version=1,
        mode=LETTER,
        views=DEMO_SETS_X_PERMUTATIONS,
        header=MMLU_HEADER,
        letter_prefix=" ",
        demo_letter_prefix=" ",
        demo_answer=DEMO_LETTER,
        about="lm-evaluation-harness MMLU: 'Answer:' then ' A'",
    ),
    PromptFormat(
        name="chat",
        version=1,
        mode=LETTER,
        views=DEMO_SETS_X_PERMUTATIONS,
        header=CHAT_HEADER,
        answer_cue="Answer with the letter of the correct option only.",
        uses_chat_template=True,
        about="the model's own chat template: the question as a user turn, the letter as the first "
        "token of the assistant's reply (for instruction-tuned models)",
    ),
    PromptFormat(
        name="continuation",
        version=1,
        mode=CONTINUATION,
        views=DEMO_SETS,
        header="The following are questions (with answers) about {domain}.",
        about="lm-evaluation-harness mmlu_continuation: k-shot 'Question: ...\\nAnswer: text', each "
        "option's text scored as the continuation (options not listed)",
    ),
    PromptFormat(
        name="qa",
        version=1,
        mode=CONTINUATION,
        views=STATEMENTS,
        question_prefix=QUESTION_PREFIX,  # with ANSWER_CUE: prompts.plain_prompt, SFT's plain template
        answer_cue=ANSWER_CUE,
        about="zero-shot 'Question: ...\\nAnswer:' (the plain SFT template), each option's text scored as "
        "the continuation: how a model tuned with that template is read",
    ),
    PromptFormat(
        name="cloze",
        version=2,
        mode=CONTINUATION,
        views=STATEMENTS,
        question_prefix="",  # a statement to continue, not a question asked
        own_statements=True,
        about="each option's text scored as the continuation of each of the question's statements",
    ),
)


def get_format(name: str) -> PromptFormat:
    if name not in FORMATS:
        raise ValueError(f"unknown prompt format {name!r}; choose from {sorted(FORMATS)}")
    return FORMATS[name]
