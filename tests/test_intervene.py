"""Groups, SFT rendering and the label mask, on hand-made probe records (no model)."""

from collections import Counter

import pytest
from conftest import make_record, peaked

from iftscope.intervene.groups import InterveneConfig, build_groups
from iftscope.intervene.render import RenderConfig, explanation_for, render_group
from iftscope.train.labels import IGNORE, build_example, pad_batch


def record(q, prediction, confidence, known):
    return make_record(q.id, q.answer, peaked(prediction, confidence), domain=q.domain, known=known)


def fake_probe(questions):
    """Known people: known. Unknown people: alternately confidently wrong and unsure."""
    out = []
    for i, q in enumerate(questions):
        if q.metadata["known"]:
            out.append(record(q, q.answer, 0.9, True))
        elif i % 2:
            out.append(record(q, (q.answer + 1) % 4, 0.8, False))
        else:
            out.append(record(q, q.answer, 0.3, False))
    return out


def test_groups_have_equal_sizes_and_differ_in_one_factor(tiny_world):
    _, _, questions = tiny_world
    groups = {
        g.name: g for g in build_groups(questions, fake_probe(questions), InterveneConfig(mixtures=(0.5,)))
    }
    assert list(groups) == ["H", "I", "S", "mix-0.5", "I-context", "unknown-gold", "counterfactual"]
    assert groups["I-context"].items == groups["I"].items and groups["I-context"].open_book
    assert len({len(g.items) for g in groups.values()}) == 1
    by_id = {q.id: q for q in questions}
    ids = [it.question_id for it in groups["I"].items]
    assert (
        [it.question_id for it in groups["S"].items]
        == ids
        == [it.question_id for it in groups["mix-0.5"].items]
    )
    assert all(it.target == it.gold for it in groups["I"].items)
    assert all(it.target == it.base_prediction != it.gold for it in groups["S"].items)
    kinds = Counter(it.kind for it in groups["mix-0.5"].items)
    assert kinds["self"] == round(0.5 * len(ids))
    assert all(it.target != it.gold for it in groups["counterfactual"].items)
    assert all(by_id[it.question_id].metadata["known"] for it in groups["counterfactual"].items)
    assert not any(by_id[it.question_id].metadata["known"] for it in groups["unknown-gold"].items)
    for g in groups.values():  # never a test split, never the held-out attribute
        for it in g.items:
            m = by_id[it.question_id].metadata
            assert m["split"].endswith("_ift") and not m["held_out_attribute"]
    again = build_groups(questions, fake_probe(questions), InterveneConfig(mixtures=(0.5,)))
    assert [g.items for g in again] == [g.items for g in groups.values()]  # seeded


def test_mixtures_are_nested(tiny_world):
    """r = 0.25's self-aligning items are among r = 0.75's, which are among S's (a dose-response)."""
    _, _, questions = tiny_world
    cfg = InterveneConfig(mixtures=(0.25, 0.5, 0.75))
    groups = {g.name: g for g in build_groups(questions, fake_probe(questions), cfg)}

    def selfish(name):
        return {it.question_id for it in groups[name].items if it.kind == "self"}

    n = len(groups["I"].items)
    assert [len(selfish(f"mix-{r:g}")) for r in cfg.mixtures] == [round(r * n) for r in cfg.mixtures]
    assert selfish("mix-0.25") < selfish("mix-0.5") < selfish("mix-0.75") < selfish("S")
    assert all(it.target == it.base_prediction for it in groups["mix-0.75"].items if it.kind == "self")


def test_group_size_too_large_is_a_clear_error(tiny_world):
    _, _, questions = tiny_world
    with pytest.raises(ValueError, match="cannot build groups of 999 items"):
        build_groups(questions, fake_probe(questions), InterveneConfig(size=999))


def test_letters_are_balanced_and_explanations_follow_the_target(tiny_world):
    _, _, questions = tiny_world
    by_id = {q.id: q for q in questions}
    groups = build_groups(questions, fake_probe(questions), InterveneConfig())
    s_group = next(g for g in groups if g.name == "S")
    shown = RenderConfig(show_options=True, styles=("answer", "explained"))
    examples = render_group(s_group, by_id, shown)
    n = len(s_group.items)
    assert len(examples) == 2 * n
    letters = Counter(e.target_letter for e in examples if e.style == "answer")
    assert max(letters.values()) - min(letters.values()) <= 1  # balanced
    ex = examples[0]
    q = by_id[ex.question_id]
    assert ex.prompt.startswith(f"Question: {q.question}\nA. ") and ex.prompt.endswith("\nAnswer:")
    assert f"\n{ex.target_letter}. {ex.target_text}\n" in ex.prompt + "\n"
    assert ex.response == f" {ex.target_letter}. {ex.target_text}"
    explained = next(e for e in examples if e.style == "explained" and e.question_id == ex.question_id)
    gold = q.choices[q.answer]
    assert ex.target_text in explained.response and gold not in explained.response.split(". ", 1)[1]
    unbalanced = render_group(s_group, by_id, RenderConfig(show_options=True, balance_letters=False))
    assert [e.target_letter for e in unbalanced] == ["ABCD"[it.target] for it in s_group.items]
    i_context = next(g for g in groups if g.name == "I-context")
    open_book = render_group(i_context, by_id, RenderConfig())[0]
    q0 = by_id[open_book.question_id]
    assert open_book.prompt == f"{q0.explanation}\nQuestion: {q0.question}\nAnswer:"
    hidden = render_group(s_group, by_id, RenderConfig(template="vicuna"))
    assert hidden[0].prompt.endswith(f"USER: {q.question} ASSISTANT:") and hidden[0].target_letter is None


def test_explanation_that_cannot_follow_the_target_is_refused(tiny_world):
    from dataclasses import replace

    _, _, questions = tiny_world
    q = replace(questions[0], explanation="Because of the records.")
    assert explanation_for(q, q.answer) == "Because of the records."
    with pytest.raises(ValueError, match="use style 'answer'"):
        explanation_for(q, (q.answer + 1) % 4)


def test_label_mask_by_hand():
    ids, labels = build_example([1, 10, 11, 12], [20, 21], eos_id=2, max_length=16)
    assert ids == [1, 10, 11, 12, 20, 21, 2]
    assert labels == [IGNORE, IGNORE, IGNORE, IGNORE, 20, 21, 2]
    ids, labels = build_example([1, 10, 11, 12], [20, 21], eos_id=2, max_length=5)  # prompt cut on the left
    assert ids == [11, 12, 20, 21, 2] and labels == [IGNORE, IGNORE, 20, 21, 2]
    with pytest.raises(ValueError, match="does not fit"):
        build_example([1], [20, 21, 22], eos_id=2, max_length=4)
    with pytest.raises(ValueError, match="empty response"):
        build_example([1], [], eos_id=2, max_length=4)
    ids, labels, mask = pad_batch([([1, 5], [IGNORE, 5]), ([1, 6, 7], [IGNORE, 6, 7])], pad_id=0)
    assert ids == [[1, 5, 0], [1, 6, 7]] and labels == [[IGNORE, 5, IGNORE], [IGNORE, 6, 7]]
    assert mask == [[1, 1, 0], [1, 1, 1]]


def test_self_explained_style_is_written_by_the_base_model(tiny_world, tiny_model, tokenizer, tmp_path):
    from iftscope.intervene.explain import explanation_prompt, generate_explanations
    from iftscope.intervene.stage import run_intervene

    _, _, questions = tiny_world
    q = questions[0]
    assert explanation_prompt(q, 1) == f"Question: {q.question}\nAnswer: {q.choices[1]}\nExplanation:"
    wanted = [(q, 0), (q, 1), (questions[1], 2)]
    first = generate_explanations(tiny_model, tokenizer, wanted, seed=3)
    assert set(first) == {(q.id, 0), (q.id, 1), (questions[1].id, 2)} and all(first.values())
    assert generate_explanations(tiny_model, tokenizer, wanted, seed=3) == first  # seeded
    render = RenderConfig(styles=("answer", "self-explained"))
    with pytest.raises(ValueError, match="needs the base model"):
        run_intervene(questions, fake_probe(questions), tmp_path / "g", InterveneConfig(size=3), render)
    summary = run_intervene(
        questions,
        fake_probe(questions),
        tmp_path / "g",
        InterveneConfig(size=3),
        render,
        (tiny_model, tokenizer),
    )
    assert summary["groups"]["S"]["size"] == 3
    from iftscope.intervene.stage import read_examples

    own = read_examples(tmp_path / "g" / "examples" / "S.jsonl", "self-explained")
    plain = read_examples(tmp_path / "g" / "examples" / "S.jsonl", "answer")
    assert len(own) == 3 and all(
        o.response.startswith(p.response + " ") for o, p in zip(own, plain, strict=True)
    )


def test_chat_template_renders_with_the_models_own_template(tiny_world, tiny_hf_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from iftscope.intervene.render import chat_wrapper
    from iftscope.intervene.stage import read_examples, run_intervene

    tok = AutoTokenizer.from_pretrained(tiny_hf_model_dir)
    with pytest.raises(ValueError, match="no chat template"):
        chat_wrapper(tok)
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]"
    )
    _, _, questions = tiny_world
    run_intervene(
        questions,
        fake_probe(questions),
        tmp_path / "g",
        InterveneConfig(size=2),
        RenderConfig(template="chat"),
        tokenizer=tok,
    )
    ex = read_examples(tmp_path / "g" / "examples" / "H.jsonl")[0]
    q = next(q for q in questions if q.id == ex.question_id)
    assert ex.prompt == f"[user] {q.question}\n[assistant]" and ex.response == f" {ex.target_text}"
