"""The SFT prompt templates, defined once: what a tuned model is trained on and read with.

SFT (intervene.render) trains on these prompts and the probe's trained formats (probe.formats:
`qa`, `sft-vicuna-options` ...) score with them, so a tuned model is read exactly the way it was
trained, up to its response. Both import them from here: neither package imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from iftscope.types import LETTERS

QUESTION_PREFIX = "Question: "
ANSWER_CUE = "Answer:"
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions."
)
TEMPLATES = ("plain", "vicuna", "chat")

Messages = list[dict[str, str]]


def ask(question: str, answer_cue: str = ANSWER_CUE, question_prefix: str = QUESTION_PREFIX) -> str:
    """The question on one line, the cue the answer follows on the next ('Question: ...\\nAnswer:')."""
    return f"{question_prefix}{question}\n{answer_cue}"


def plain_prompt(instruction: str, context: str | None = None) -> str:
    """The plain SFT prompt around an instruction, an open-book context (if any) on the line before."""
    return (f"{context}\n" if context else "") + ask(instruction)


def instruction(question: str, choices: Sequence[str] | None) -> str:
    """The question, then its options as 'A. text' lines when they are shown."""
    lines = [question.strip()]
    if choices is not None:
        lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return "\n".join(lines)


def chat_renderer(tokenizer, advice: str) -> Callable[[Messages], str]:
    """The model's own chat template over a conversation, ready for the assistant's reply; BOS is
    left out (the tokenizer adds it when the prompt is encoded). `advice` says what to use instead
    when the tokenizer has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"this model's tokenizer has no chat template; {advice}")
    bos = tokenizer.bos_token or ""

    def render(messages: Messages) -> str:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text[len(bos) :] if bos and text.startswith(bos) else text

    return render


def user_turn(render: Callable[[Messages], str]) -> Callable[[str], str]:
    """One user turn through a chat renderer: the `chat` template's wrapper."""
    return lambda text: render([{"role": "user", "content": text}])


def chat_wrapper(tokenizer) -> Callable[[str], str]:
    """The model's own chat template around one user turn, ready for the assistant's reply."""
    return user_turn(chat_renderer(tokenizer, "template 'chat' needs one: use plain or vicuna"))


def wrap(
    template: str, text: str, chat: Callable[[str], str] | None = None, context: str | None = None
) -> str:
    """The prompt around an instruction (and an open-book context); the response follows it."""
    if template == "plain":
        # the fact sentence alone: every word of it is in the micro-world's vocabulary
        return plain_prompt(text, context)
    if context:
        text = f"Context: {context}\n{text}"
    if template == "vicuna":
        return f"{VICUNA_SYSTEM} USER: {text} ASSISTANT:"
    if template == "chat":
        if chat is None:
            raise ValueError("template 'chat' needs the model's tokenizer (with a chat template)")
        return chat(text)
    raise ValueError(f"unknown template {template!r}; choose from {list(TEMPLATES)}")


def sft_prompt(
    template: str,
    question: str,
    choices: Sequence[str] | None,
    chat: Callable[[str], str] | None = None,
    context: str | None = None,
) -> str:
    """A training prompt: the question (with its options when shown) in `template`. SFT examples,
    the trained formats and generation all build their prompts here."""
    return wrap(template, instruction(question, choices), chat, context)
