"""Named, versioned prompt formats, each a registry entry that says what it scores and how.

A letter format scores the next token after the prompt, restricted to the option letters, with
the letter written exactly as its demonstrations teach it. A continuation format scores each
option's text as the continuation of a context: k-shot questions (`views="demo-sets"`) or
zero-shot statements (`views="statements"`). A trained format (`template` set) reads a tuned model
zero-shot in exactly the prompt SFT trained it on (iftscope.prompts.sft_prompt), up to the response:
the option letter after the prompt when the options were shown (the response was " C. text"), else
each option's text (the response was " text"); `trained_format` names the one for a render config.
Code reads these fields, never a format's name. Bump a version whenever the scores a format gives
could change: `id` is written into records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from iftscope.prompts import ANSWER_CUE, QUESTION_PREFIX, ask, chat_renderer, sft_prompt, user_turn
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
    template: str | None = None  # trained format: the SFT template whose prompt it scores, zero-shot
    render: Callable[[list[dict[str, str]]], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """A misdeclared entry fails when the registry is built, not halfway through a probe."""
        if self.views not in VIEWS.get(self.mode, ()):
            raise ValueError(f"format {self.name!r}: views {self.views!r} with mode {self.mode!r}; see VIEWS")
        if self.demo_answer not in (DEMO_LETTER, DEMO_LETTER_TEXT):
            raise ValueError(f"format {self.name!r}: unknown demo_answer {self.demo_answer!r}")
        if self.template is not None and (self.uses_chat_template != (self.template == "chat")):
            raise ValueError(f"format {self.name!r}: uses_chat_template must say whether template is chat")

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def zero_shot_only(self) -> bool:
        """Statements are scored without demonstrations, and a trained format has none: SFT showed none."""
        return self.views == STATEMENTS or self.template is not None

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
        advice = "use --format paper or mmlu"
        if self.template is not None:
            advice = f"format {self.name} reads a model tuned with the chat template, which needs one"
        return replace(self, render=chat_renderer(tokenizer, advice))  # no BOS: the scorer adds it

    def _head(self, q: Question) -> str:
        return self.header.format(domain=(q.domain or "general knowledge").replace("_", " "))

    def chat_turn(self, q: Question, choices: Sequence[str]) -> str:
        return f"{self._head(q)}\n\n{self.block(q, choices)}"

    def trained_prompt(self, q: Question, choices: Sequence[str] | None) -> str:
        """The SFT prompt of `template` for q (with these options listed, or none), as training built it."""
        if self.template is None:
            raise ValueError(f"format {self.id} is not a trained format (no SFT template)")
        chat = None
        if self.template == "chat":
            if self.render is None:
                raise ValueError(f"format {self.id} needs the model's tokenizer: call with_tokenizer first")
            chat = user_turn(self.render)
        return sft_prompt(self.template, q.question, choices, chat)

    def letter_context(self) -> str:
        """What precedes the scored letter, to find the letter's token id."""
        if self.template is not None:  # the whole prompt: the letter's token is the one in context
            return self.trained_prompt(Question("_", "?", ("x", "y"), 0), ("x", "y"))
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
        if self.template is not None:
            if demos:
                raise ValueError(f"format {self.id} reads a tuned model zero-shot; use shots=0")
            return self.trained_prompt(q, choices)
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
        if self.template is not None:
            return [self.trained_prompt(q, None)]
        own = q.metadata.get("cloze_prompts") if self.own_statements else None
        return list(own or [self._ask(q)])


PAPER_HEADER = "The following are multiple choice questions about {domain}. Please choose the correct answer."
CHAT_HEADER = "The following is a multiple choice question about {domain}."
MMLU_HEADER = "The following are multiple choice questions (with answers) about {domain}."


# (SFT template, options shown) -> the trained format that reads a model tuned so
TRAINED = {
    ("plain", False): "qa",
    ("plain", True): "sft-plain-options",
    ("vicuna", False): "sft-vicuna",
    ("vicuna", True): "sft-vicuna-options",
    ("chat", False): "sft-chat",
    ("chat", True): "sft-chat-options",
}
TRAINED_ALIAS = "trained"  # an eval_format that means: the trained format of the study's render config


def _trained_formats() -> list[PromptFormat]:
    """The trained formats but `qa` (declared on its own, as it was before there were others)."""
    out = []
    for (template, options), name in TRAINED.items():
        if name == "qa":
            continue
        read = (
            "the letter after the prompt (' C', the response's first token)"
            if options
            else ("each option's text as the continuation (the response ' text')")
        )
        out.append(
            PromptFormat(
                name=name,
                version=1,
                mode=LETTER if options else CONTINUATION,
                views=DEMO_SETS_X_PERMUTATIONS if options else STATEMENTS,
                letter_prefix=" ",  # the response ' C. text' starts with ' C'
                template=template,
                uses_chat_template=template == "chat",
                about=f"zero-shot, the {template} SFT template{' with the options listed' if options else ''}"
                f" exactly as training prompted; scores {read}: how a model tuned so is read",
            )
        )
    return out


def trained_format(template: str, show_options: bool) -> str:
    """The name of the format that reads a model tuned with this template and option display."""
    if (template, show_options) not in TRAINED:
        raise ValueError(f"no trained format for template {template!r}; templates: plain, vicuna, chat")
    return TRAINED[template, show_options]


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
        template="plain",  # prompts.sft_prompt: 'Question: ...\nAnswer:', SFT's plain template
        about="zero-shot 'Question: ...\\nAnswer:' (the plain SFT template), each option's text scored as "
        "the continuation: how a model tuned with that template is read",
    ),
    *_trained_formats(),
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
