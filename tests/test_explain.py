"""The base model's own explanations (style self-explained): sampled with our settings, not the
model's generation_config, as long as the recipe says, in the template the examples use."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import make_record, peaked

from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig


def _load(folder):
    from iftscope.models.load import load_model

    return load_model(folder, device="cpu")


def test_a_models_generation_config_does_not_change_the_samples(real_model, tiny_world):
    """Llama-2's generation_config.json sets top_p 0.9 and temperature 0.6; `generate` used to
    inherit the top_p (only top_k and temperature were passed), so explanations depended on the
    checkpoint's file. A model whose config sets top_p=0.1, top_k=1 (and more) must sample exactly
    as one without."""
    from iftscope.intervene.explain import generate_explanations

    folder = real_model("llama", "sp-converted")
    (plain, tok), (configured, _) = _load(folder), _load(folder)
    configured.generation_config.update(
        do_sample=True, top_p=0.1, top_k=1, temperature=0.3, repetition_penalty=1.3, min_p=0.5, typical_p=0.5
    )
    _, _, questions = tiny_world
    wanted = [(q, i % len(q.choices)) for i, q in enumerate(questions[:4])]
    first = generate_explanations(plain, tok, wanted, max_new_tokens=8, seed=5)
    assert generate_explanations(configured, tok, wanted, max_new_tokens=8, seed=5) == first
    assert generate_explanations(plain, tok, wanted, max_new_tokens=8, seed=6) != first  # seeds matter


def _records(questions):
    """Alternately known and confidently wrong, so H and I both have items."""
    out = []
    for i, q in enumerate(questions):
        wrong = i % 2 == 1
        guess = (q.answer + 1) % len(q.choices) if wrong else q.answer
        out.append(make_record(q.id, q.answer, peaked(guess, 0.9), domain=q.domain, known=not wrong))
    return out


def test_explanation_length_and_temperature_are_recipe_keys_and_chat_prompts_work(
    real_model, tiny_world, tmp_path, monkeypatch
):
    """`intervene.explanation_tokens` (was 24, hard-coded) reaches generate as max_new_tokens, the
    temperature as the sampling temperature; with the `chat` template the explanation prompt goes
    through the model's chat template (it used to raise: no chat wrapper was passed)."""
    import iftscope.intervene.explain as explain
    from iftscope.intervene.stage import read_examples, run_intervene
    from iftscope.study.recipe import load_recipe
    from iftscope.study.validate import problems

    cfg, _ = load_recipe(None, ["intervene.explanation_tokens=3", "intervene.explanation_temperature=1.5"])
    assert (cfg.intervene.explanation_tokens, cfg.intervene.explanation_temperature) == (3, 1.5)
    bad, _ = load_recipe(None, ["intervene.explanation_tokens=0", "intervene.explanation_temperature=0"])
    assert {p.split(":")[0] for p in problems(bad)} >= {
        "intervene.explanation_tokens",
        "intervene.explanation_temperature",
    }
    seen = []
    real = explain.generate_batched

    def spy(model, tokenizer, prompts, max_new_tokens, *args, **kwargs):
        seen.append((max_new_tokens, kwargs, [tokenizer.decode(p) for p in prompts]))
        return real(model, tokenizer, prompts, max_new_tokens, *args, **kwargs)

    monkeypatch.setattr(explain, "generate_batched", spy)
    _, _, questions = tiny_world
    questions = [replace(q, metadata={}) for q in questions[:8]]  # plain questions, not a micro-world
    model, tok = _load(real_model("mistral", "sp-instruct"))
    iv = InterveneConfig(size=2, mixtures=(), micro_world=False, contextualized=False, explanation_tokens=3)
    render = RenderConfig(template="chat", styles=("answer", "self-explained"))
    run_intervene(questions, _records(questions), tmp_path / "g", iv, render, (model, tok))
    (tokens, kwargs, prompts), *_ = seen
    assert tokens == 3 and kwargs["temperature"] == 0.7 and kwargs["top_p"] == 1.0 and kwargs["top_k"] == 0
    assert all("[INST]" in p and p.rstrip().endswith("Explanation:") for p in prompts)
    own = read_examples(tmp_path / "g" / "examples" / "H.jsonl", "self-explained")
    assert own and all(e.prompt.startswith("[INST]") for e in own)
    for e in own:  # the answer, then at most 3 generated tokens
        extra = e.response.split(" ", 2)[-1]
        assert len(tok(extra, add_special_tokens=False)["input_ids"]) <= 3 + 1


def test_temperature_must_be_positive():
    from iftscope.intervene.explain import sampling_settings

    with pytest.raises(ValueError, match="must be > 0"):
        sampling_settings(0.0)
    assert sampling_settings(0.5)["temperature"] == 0.5
