import random
from collections import Counter

from iftscope.microworld.generator import (
    ATTRIBUTES,
    WorldConfig,
    fact_prompts,
    make_people,
    make_questions,
    render_biography,
)
from iftscope.microworld.lexicon import HELD_OUT_TEMPLATES, TEMPLATES, VALUES
from iftscope.microworld.pretrain import BiographySampler


def test_same_config_same_world_other_seed_other_world():
    cfg = WorldConfig(seed=5, people=30, unknown=10)
    a, b = make_people(cfg), make_people(cfg)
    assert a == b and make_questions(a, cfg) == make_questions(b, cfg)
    assert make_people(WorldConfig(seed=6, people=30, unknown=10)) != a


def test_people_and_splits(tiny_world):
    cfg, people, _ = tiny_world
    assert len({p.name for p in people}) == len(people) == 30
    splits = Counter(p.split for p in people)
    assert splits == {"known_ift": 10, "known_test": 10, "unknown_ift": 5, "unknown_test": 5}
    assert all(p.known == p.split.startswith("known") for p in people)
    assert all(p.facts[a] in VALUES[a] for p in people for a in ATTRIBUTES)


def test_questions_options_and_answer_position():
    cfg = WorldConfig(seed=1, people=200, unknown=50)
    people = make_people(cfg)
    questions = make_questions(people, cfg)
    facts = {p.id: p.facts for p in people}
    assert len(questions) == 250 * len(ATTRIBUTES)
    for q in questions:
        attr = q.metadata["attribute"]
        assert len(q.choices) == 4 and len(set(q.choices)) == 4
        assert set(q.choices) <= set(VALUES[attr])
        assert q.answer_text == facts[q.metadata["person"]][attr]
        assert q.metadata["name"] in q.question and q.metadata["held_out_attribute"] == (attr == "employer")
    positions = Counter(q.answer for q in questions)
    assert all(abs(positions[i] / len(questions) - 0.25) < 0.03 for i in range(4)), positions


def test_biography_paraphrases_every_fact_with_full_name(tiny_world):
    _, people, _ = tiny_world
    rng = random.Random(0)
    p = people[0]
    renders = {render_biography(p, rng) for _ in range(20)}
    assert len(renders) > 10  # paraphrased and reordered each time
    for text in renders:
        sentences = [s for s in text.split(". ") if s]
        assert len(sentences) == len(ATTRIBUTES)
        assert all(p.name in s for s in sentences)
        assert all(p.facts[a] in text for a in ATTRIBUTES)


def test_held_out_templates_never_in_pretraining():
    for attr, held in HELD_OUT_TEMPLATES.items():
        assert len(held) == 3 and not set(held) & set(TEMPLATES[attr])
        assert all(t.endswith("{value}.") for t in held + TEMPLATES[attr])


def test_fact_prompts_cut_before_value(tiny_world):
    _, people, _ = tiny_world
    prompts = fact_prompts(people)
    assert len(prompts) == len(people) * len(ATTRIBUTES) * 3
    f = prompts[0]
    assert f.prompt.startswith(people[0].name) and f.value not in f.prompt


def test_vocabulary_covers_everything(tokenizer, tiny_world):
    _, people, questions = tiny_world
    texts = [q.question + " " + " ".join(q.choices) + " " + q.explanation for q in questions]
    texts += [f.prompt for f in fact_prompts(people)] + [render_biography(people[0], random.Random(1))]
    for text in texts:
        assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"], text
    # every attribute value is exactly one token
    for values in VALUES.values():
        assert all(len(tokenizer.encode(v, add_special_tokens=False)) == 1 for v in values)


def test_sampler_ids_equal_tokenised_text(tokenizer, tiny_world):
    _, people, _ = tiny_world
    sampler = BiographySampler(people, tokenizer, seed=0)
    known = [p for p in people if p.known]
    ids = sampler.biography_ids(known[0], random.Random(4))
    text = tokenizer.decode(ids[1:-1])
    assert tokenizer.encode(text, add_special_tokens=False) == ids[1:-1]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    unknown_names = {p.name for p in people if not p.known}
    batch = sampler.batch(step=0, batch_size=4, seq_len=32)
    assert batch.shape == (4, 32) and (batch == sampler.batch(0, 4, 32)).all()
    assert not any(
        n.split()[0] + " " + n.split()[1] in tokenizer.decode(row) for row in batch for n in unknown_names
    )


def test_decorated_biographies_keep_every_fact(tokenizer, tiny_world):
    from iftscope.microworld.lexicon import ASIDES, OPENERS

    _, people, _ = tiny_world
    p = next(x for x in people if x.known)
    sampler = BiographySampler(people, tokenizer, seed=0, decorate=1.0)
    texts = [tokenizer.decode(sampler.biography_ids(p, random.Random(i))[1:-1]) for i in range(20)]
    decorations = [d.strip(", ") for d in OPENERS + ASIDES]
    assert sum(any(d in t for d in decorations) for t in texts) >= 15
    assert all(p.facts[a] in t for t in texts for a in ATTRIBUTES)
    assert all(t.count(p.name) == len(ATTRIBUTES) for t in texts)


def test_question_paraphrases_use_only_vocabulary_words():
    """The tokenizer is built before pretraining: a reworded question must not bring <unk>."""
    from iftscope.microworld.generator import WORD_PATTERN, vocabulary
    from iftscope.microworld.lexicon import QUESTION_PARAPHRASES, QUESTIONS

    vocab = set(vocabulary())
    assert set(QUESTION_PARAPHRASES) == set(QUESTIONS)
    for attr, text in QUESTION_PARAPHRASES.items():
        assert text != QUESTIONS[attr]
        assert set(WORD_PATTERN.findall(text.replace("{name}", " "))) <= vocab, text
