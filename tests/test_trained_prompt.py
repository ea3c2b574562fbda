"""A tuned model is read the way it was trained, on real production tokenizers.

For every SFT template x show_options x style, the format a study reads its tuned models in
(StudyConfig.tuned_format) builds exactly the SFT example's prompt, and what it scores is what
training teaches: the first token of the response as tokenizer(prompt + response) gives it (the
letter ' C' of ' C. text'), or the option text as the response's first tokens. Generation asks the
same prompt. Before this, the paper recipe read a vicuna-tuned model without the vicuna wrapper on a
bare 'C', and generation dropped the options that training showed.
"""

from __future__ import annotations

import pytest
import torch

from iftscope.evaluate.behaviour import trained_prompts
from iftscope.intervene.render import STYLES, RenderConfig, render_group
from iftscope.models.scorer import HFScorer
from iftscope.probe.formats import CONTINUATION, LETTER, get_format
from iftscope.probe.knowledge import letter_token_ids
from iftscope.study.config import StudyConfig
from iftscope.types import Group, GroupItem, Question

# (tokenizer kind, architecture of the tiny model it comes with, SFT templates it is tested with)
TOKENIZERS = {
    "sp-converted": ("llama", ("plain", "vicuna")),
    "sp-legacy": ("mistral", ("plain", "vicuna")),
    "sp-instruct": ("mistral", ("chat",)),
    "tekken": ("qwen2", ("plain", "vicuna")),
}
CASES = [(kind, t, shown) for kind, (_, ts) in TOKENIZERS.items() for t in ts for shown in (False, True)]

QUESTIONS = [
    Question(
        "capital",
        "Which city is the capital of Portugal?",
        ("Lisbon", "Madrid", "Porto", "Rome"),
        0,
        explanation="Lisbon has been the seat of government since 1255.",
    ),
    Question(
        "bridge",
        "Which of the following is a suspension bridge?",
        ("the Pantheon", "the Golden Gate Bridge", "Hadrian's Wall", "the Colosseum"),
        1,
        explanation="the Golden Gate Bridge hangs from two main cables.",
    ),
]
ITEMS = (
    GroupItem("capital", 2, "counterfactual", 0, 0, 0.9),  # a target that is not the first option
    GroupItem("bridge", 1, "gold", 1, 1, 0.8),
)


@pytest.fixture(scope="module")
def scorers(real_model):
    """kind -> an HFScorer over the tiny model with that tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = {}
    for kind, (arch, _) in TOKENIZERS.items():
        folder = real_model(arch, kind)
        out[kind] = HFScorer(
            AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        )
    return out


def _examples(template: str, shown: bool, tokenizer):
    from iftscope.prompts import chat_wrapper

    render = RenderConfig(template, shown, tuple(STYLES), balance_letters=False)  # options in data order
    explanations = {(it.question_id, it.target): "Because the record says so." for it in ITEMS}
    chat = chat_wrapper(tokenizer) if template == "chat" else None
    group = Group("G", "test", ITEMS)
    examples = render_group(group, {q.id: q for q in QUESTIONS}, render, chat, explanations)
    assert {e.style for e in examples} == set(STYLES)
    return render, examples


def _split(tokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """What training sees: prompt + response tokenised together, split at the prompt's tokens."""
    whole = tokenizer(prompt + response)["input_ids"]
    alone = tokenizer(prompt)["input_ids"]
    assert whole[: len(alone)] == alone, "the prompt's tokens change when its response follows"
    return alone, whole[len(alone) :]


@torch.no_grad()
def _logprob(model, prompt_ids: list[int], response_ids: list[int]) -> float:
    logits = model(input_ids=torch.tensor([prompt_ids + response_ids])).logits[0].float()
    rows = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
    return rows.gather(1, torch.tensor(response_ids)[:, None]).sum().item()


@pytest.mark.parametrize(("kind", "template", "shown"), CASES)
def test_a_tuned_model_is_read_with_its_training_prompt(scorers, kind, template, shown):
    scorer = scorers[kind]
    tok = scorer.tokenizer
    render, examples = _examples(template, shown, tok)
    fmt = get_format(StudyConfig(render=render).tuned_format).with_tokenizer(tok)
    assert fmt.mode == (LETTER if shown else CONTINUATION) and fmt.zero_shot_only
    by_id = {q.id: q for q in QUESTIONS}
    for ex in examples:
        q = by_id[ex.question_id]
        target = next(it.target for it in ITEMS if it.question_id == q.id)
        prompt_ids, response_ids = _split(tok, ex.prompt, ex.response)
        assert trained_prompts(tok, [q], template, shown) == [ex.prompt]  # generation asks the same
        if shown:
            assert fmt.letter_prompt(q, q.choices, []) == ex.prompt
            assert scorer.encode(ex.prompt) == prompt_ids  # the letter is scored right after these
            scored = letter_token_ids(scorer, fmt, len(q.choices))[target]
            assert scored == response_ids[0], tok.convert_ids_to_tokens(response_ids[:2])
        else:
            (context,) = fmt.cloze_contexts(q)
            assert context == ex.prompt
            (score,) = scorer.continuation_logprobs([(context, " " + q.choices[target])])
            taught = response_ids[: score.tokens]
            assert tok.decode(taught).strip() == q.choices[target]  # the response's first tokens
            assert score.logprob == pytest.approx(_logprob(scorer.model, prompt_ids, taught), abs=1e-4)


def test_the_default_study_reads_its_tuned_models_in_qa():
    """The micro-world study (plain template, no options) keeps the `qa` format and its records."""
    assert StudyConfig().tuned_format == "qa" and get_format("qa").id == "qa@1"
    assert StudyConfig(eval_format="paper").tuned_format == "paper"  # an explicit format is kept
    paper = StudyConfig(render=RenderConfig(template="vicuna", show_options=True))
    assert paper.tuned_format == "sft-vicuna-options"
    fmt = get_format(paper.tuned_format)
    q = QUESTIONS[0]
    assert fmt.letter_prompt(q, q.choices, []).endswith("D. Rome ASSISTANT:") and fmt.letter(2) == " C"
    with pytest.raises(ValueError, match="zero-shot"):
        fmt.letter_prompt(q, q.choices, [QUESTIONS[1]])
