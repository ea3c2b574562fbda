"""Generation mode: answer parsing, format rate and the token-shift ranks, by hand and on a tiny model."""

import pytest
import torch

from iftscope.evaluate.generation import base_ranks, generation_metrics, parse_answer, shift_fractions


def test_parse_answer_and_format():
    choices = ["Lisbon", "Lima", "Lisbon Bay", "Oslo"]
    assert parse_answer(" Lisbon Bay is where", choices) == (2, True)  # longest option first
    assert parse_answer("Lisbon .", choices) == (0, True)
    assert parse_answer("I think Oslo", choices) == (3, False)  # right answer, wrong format
    assert parse_answer("Lima or Oslo", choices) == (1, True)
    assert parse_answer("maybe Lima or Oslo", choices) == (None, False)  # ambiguous
    assert parse_answer("Limassol", choices) == (None, False)  # no partial words


def test_parse_answer_reads_letter_answers_when_the_options_were_shown():
    """A model trained on ' C. text' answers 'C. text', 'C.' or 'C': all are option C."""
    choices = ["Lisbon", "Lima", "Lisbon Bay", "Oslo"]
    assert parse_answer(" C. Lisbon Bay", choices) == (2, True)
    assert parse_answer("C.", choices) == (2, True)
    assert parse_answer("C", choices) == (2, True)
    assert parse_answer("(D) Oslo", choices) == (3, True)
    assert parse_answer("B. Lima is the city", choices) == (1, True)
    assert parse_answer("C. Oslo", choices) == (2, False)  # the letter answers; its text is another's
    assert parse_answer("A city", choices) == (None, False)  # a word, not a letter
    assert parse_answer("E.", choices) == (None, False)  # no option E
    assert parse_answer("Lima", choices) == (1, True)  # the option text still works
    # without the options shown, a letter is no answer (the micro-world's prompts list none)
    assert parse_answer("C.", choices, letters=False) == (None, False)


def test_generation_asks_with_the_options_training_showed(tiny_world):
    from iftscope.evaluate.behaviour import trained_prompts

    _, _, questions = tiny_world
    q = questions[0]
    (with_options,) = trained_prompts(None, [q], "vicuna", True)
    options = "\n".join(f"{letter}. {c}" for letter, c in zip("ABCDEFGH", q.choices, strict=False))
    assert with_options.endswith(f"{options} ASSISTANT:")
    assert trained_prompts(None, [q], "plain", False) == [f"Question: {q.question.strip()}\nAnswer:"]


def test_shift_fractions_by_hand():
    f = shift_fractions([1, 1, 2, 3, 4, 10])
    assert f == {"n": 6, "unshifted": 2 / 6, "marginal": 2 / 6, "shifted": 2 / 6}
    assert shift_fractions([])["n"] == 0


def test_base_ranks_match_a_manual_sort(tiny_model, tokenizer):
    prompt = tokenizer("Question : Where was Stalain Brimley born ? Answer:")["input_ids"]
    response = tokenizer(" Lisbon .", add_special_tokens=False)["input_ids"]
    ranks = base_ranks(tiny_model, prompt, response)
    with torch.no_grad():
        logits = tiny_model(input_ids=torch.tensor([prompt + response])).logits[0]
    for i, (tok, r) in enumerate(zip(response, ranks, strict=True)):
        row = logits[len(prompt) - 1 + i]
        assert r == int((row > row[tok]).sum()) + 1


def test_a_model_against_itself_shifts_nothing(tiny_model, tokenizer, tiny_world):
    _, _, questions = tiny_world
    qs = questions[:5]
    prompts = [f"Question: {q.question}\nAnswer:" for q in qs]
    m = generation_metrics(tiny_model, tiny_model, tokenizer, qs, prompts, max_new_tokens=4)
    assert m["n"] == 5
    # accuracy and format rate recounted from the parsed samples (all 5 are kept)
    parsed = [
        (parse_answer(s["response"], q.choices), q.answer) for s, q in zip(m["samples"], qs, strict=True)
    ]
    assert m["accuracy"] == sum(idx == gold for (idx, _), gold in parsed) / 5
    assert m["format_rate"] == sum(fmt for (_, fmt), _ in parsed) / 5
    assert m["shift_answer_token"]["unshifted"] == pytest.approx(1.0)  # greedy = the base's top-1
    assert m["shift_other_tokens"]["shifted"] == 0.0
    positions = m["shift_by_position"]
    assert positions[0]["n"] == 5 and all(p["unshifted"] == pytest.approx(1.0) for p in positions)
    assert sum(p["n"] for p in positions) == m["shift_answer_token"]["n"] + m["shift_other_tokens"]["n"]


def test_batched_ranks_equal_one_by_one(tiny_model, tokenizer):
    from iftscope.evaluate.generation import batch_base_ranks

    pairs = [
        (tokenizer("Question : Where was Stalain Brimley born ? Answer:")["input_ids"], [7, 8, 9]),
        (tokenizer("Answer:")["input_ids"], [10]),
        (tokenizer("Question : Answer:")["input_ids"], []),
    ]
    assert batch_base_ranks(tiny_model, pairs) == [
        base_ranks(tiny_model, p, r) if r else [] for p, r in pairs
    ]
