import numpy as np
import pytest

from iftscope.intervene.render import RenderConfig, render_group
from iftscope.models.scorer import ContinuationScore, LetterScores
from iftscope.probe.formats import FORMATS, PromptFormat, get_format
from iftscope.probe.knowledge import ProbeConfig, choose_demos, confidence_category, probe
from iftscope.probe.runner import run_probe
from iftscope.types import Group, GroupItem, Question


class PositionBiasedScorer:
    """Believes the gold answer (marked by '*' in the option text) a little, and letter A a lot."""

    def __init__(self):
        self.prompts: list[str] = []

    def single_token_id(self, context, text):
        return ord(text.strip())

    def letter_logprobs(self, prompts, token_ids):
        self.prompts += prompts
        rows = []
        for p in prompts:
            block = p.split("\n\n")[-1].split("\n")[1:-1]  # the target's option lines
            logits = np.array([2.0 if i == 0 else 0.0 for i in range(len(token_ids))])
            logits += np.array([1.0 if line.endswith("*") else 0.0 for line in block])
            rows.append(logits - np.log(np.exp(logits).sum()) - 0.1)  # mass exp(-0.1) on letters
        return LetterScores(np.array(rows))

    def continuation_logprobs(self, pairs):
        return [ContinuationScore(-1.0 if cont.endswith("*") else -3.0, 1, len(cont)) for _, cont in pairs]


def questions(n=8):
    out = []
    for i in range(n):
        choices = [f"opt{i}{j}" + ("*" if j == i % 4 else "") for j in range(4)]
        out.append(Question(f"q{i}", f"Question {i}?", choices, i % 4, domain="d"))
    return out


def test_letter_probe_without_permutations_shows_position_bias():
    qs = questions()
    recs = list(probe(PositionBiasedScorer(), qs, qs, get_format("paper"), ProbeConfig(shots=2)))
    assert [r.prediction for r in recs] == [0] * 8  # the bias wins: always A
    assert [r.correct for r in recs] == [q.answer == 0 for q in qs]
    assert recs[0].option_mass == pytest.approx(np.exp(-0.1))
    assert recs[0].gold_abs_prob == pytest.approx(recs[0].gold_prob * np.exp(-0.1))
    assert sum(recs[1].distribution) == pytest.approx(1.0)


def test_cyclic_permutations_cancel_position_bias():
    qs = questions()
    recs = list(
        probe(PositionBiasedScorer(), qs, qs, get_format("paper"), ProbeConfig(shots=2, permutations=4))
    )
    assert all(r.correct for r in recs) and all(r.views == 4 for r in recs)
    # gold sits at position A in one rotation of four (logits 3, 0, 0, 0) and elsewhere in three
    # (A gets 2, gold 1, the other two 0)
    e = np.e
    p_gold = (e**3 / (e**3 + 3) + 3 * e / (e**2 + e + 2)) / 4
    assert recs[1].gold_prob == pytest.approx(p_gold)


def test_demonstrations_exclude_target_and_are_seeded():
    qs = questions()
    cfg = ProbeConfig(shots=5, seed=1, demos="per-question")
    for q in qs:
        demos = choose_demos(q, qs, cfg, 0)
        assert q not in demos and len(demos) == 5
        assert demos == choose_demos(q, qs, cfg, 0)
    assert choose_demos(qs[0], qs, cfg, 0) != choose_demos(qs[0], qs, cfg, 1)
    fixed = ProbeConfig(shots=3, demos="first")
    assert [d.id for d in choose_demos(qs[0], qs, fixed, 0)] == ["q1", "q2", "q3"]
    shared = ProbeConfig(shots=3, seed=2)  # one draw for every question; the target swapped out
    sets = [choose_demos(q, qs, shared, 0) for q in qs]
    assert all(q not in s and len(s) == 3 for q, s in zip(qs, sets, strict=True))
    assert max(sets.count(s) for s in sets) >= len(qs) - 4  # only the 4 drawn questions differ
    assert [choose_demos(q, qs, shared, 1) for q in qs] != sets
    with pytest.raises(ValueError, match="pool has 7 usable items"):
        choose_demos(qs[0], qs, ProbeConfig(shots=8), 0)


def test_paper_prompt_text_and_letters():
    q, d = questions(2)
    prompt = get_format("paper").letter_prompt(q, q.choices, [d])
    assert prompt.startswith(
        "The following are multiple choice questions about d. Please choose the correct answer.\n\n"
    )
    assert "Question 1?\nA. opt10\nB. opt11*\nC. opt12\nD. opt13\nAnswer:B. opt11*\n\n" in prompt
    assert prompt.endswith("D. opt03\nAnswer:")
    assert get_format("paper").letter(2) == "C" and get_format("paper-original").letter(2) == " C"
    assert "Answer: B\n\n" in get_format("mmlu").letter_prompt(q, q.choices, [d])
    assert "Answer:B. opt11*" in get_format("paper-original").letter_prompt(q, q.choices, [d])


def test_cloze_mode_and_confidence_categories():
    qs = questions(4)
    recs = list(probe(PositionBiasedScorer(), qs, qs, get_format("cloze"), ProbeConfig(shots=0)))
    assert all(r.correct and r.category == "AllViewsRight" for r in recs)
    # every option is one continuation: gold exp(-1), the other three exp(-3) each
    assert recs[0].option_mass == pytest.approx(np.exp(-1) + 3 * np.exp(-3))
    assert recs[0].gold_abs_prob == pytest.approx(np.exp(-1))
    assert not any(r.known for r in recs)  # generative rule: the model says gold only 37% of the time
    argmax = ProbeConfig(shots=0, known_rule="argmax")
    assert all(r.known for r in probe(PositionBiasedScorer(), qs, qs, get_format("cloze"), argmax))
    with pytest.raises(ValueError, match="known_rule"):
        list(probe(PositionBiasedScorer(), qs, qs, get_format("cloze"), ProbeConfig(shots=0, known_rule="x")))
    with pytest.raises(ValueError, match="zero-shot"):
        list(probe(PositionBiasedScorer(), qs, qs, get_format("cloze"), ProbeConfig(shots=2)))
    assert confidence_category([True, False], 0.5, 1 / 16) == "SomeViewsRight"
    assert confidence_category([False, False], 0.1, 1 / 16) == "GoldPlausible"
    assert confidence_category([False], 0.01, 1 / 16) == "GoldImplausible"


def test_run_probe_writes_and_resumes(tmp_path):
    qs = questions()
    fmt, cfg = get_format("paper"), ProbeConfig(shots=2, permutations=4, batch_questions=3)
    clean = run_probe(PositionBiasedScorer(), qs, qs, fmt, cfg, tmp_path / "a", progress=False)
    assert clean["n"] == 8 and clean["accuracy"] == 1.0 and clean["format"] == "paper@1"
    # a crash after 3 records, mid-line: the rerun keeps the 3 and rescores only the other 5
    lines = (tmp_path / "a" / "records.jsonl").read_text().splitlines(keepends=True)
    crashed = tmp_path / "b"
    crashed.mkdir()
    (crashed / "records.jsonl.partial").write_text("".join(lines[:3]) + lines[3][:20])
    (crashed / "records.jsonl.partial.key").write_text(_key(fmt, cfg, qs))
    scorer = PositionBiasedScorer()
    resumed = run_probe(scorer, qs, qs, fmt, cfg, crashed, progress=False)
    assert resumed["resumed_at"] == 3 and len(scorer.prompts) == 5 * 4
    assert (crashed / "records.jsonl").read_text() == "".join(lines)
    assert not (crashed / "records.jsonl.partial.key").exists()
    # a partial file written under another config is discarded, not mixed in
    (crashed / "records.jsonl.partial").write_text("".join(lines[:3]))
    other = run_probe(PositionBiasedScorer(), qs, qs, fmt, ProbeConfig(shots=1), crashed, progress=False)
    assert other["resumed_at"] == 0


def _key(fmt, cfg, qs):
    from dataclasses import asdict

    from iftscope.runs import fingerprint

    return fingerprint(
        {"format": fmt.id, "config": asdict(cfg), "questions": [q.id for q in qs], "pool": [q.id for q in qs]}
    )


TRAINED_NAMES = ("sft-plain-options", "sft-vicuna", "sft-vicuna-options", "sft-chat", "sft-chat-options")


def test_every_format_is_registered_with_a_version():
    base = {"paper", "paper-original", "mmlu", "chat", "continuation", "cloze", "qa"}
    assert set(FORMATS) == base | set(TRAINED_NAMES)
    assert {f.id for f in FORMATS.values()} == {
        "paper@1",
        "paper-original@1",
        "mmlu@1",
        "chat@1",
        "continuation@1",
        "cloze@2",
        "qa@1",
        *(f"{n}@1" for n in TRAINED_NAMES),
    }


def test_continuation_format_is_k_shot_with_option_texts():
    qs = questions(6)
    fmt = get_format("continuation")
    ctx = fmt.continuation_context(qs[0], qs[1:3])
    assert ctx == (
        "The following are questions (with answers) about d.\n\n"
        "Question: Question 1?\nAnswer: opt11*\n\nQuestion: Question 2?\nAnswer: opt22*\n\n"
        "Question: Question 0?\nAnswer:"
    )
    recs = list(probe(PositionBiasedScorer(), qs, qs, fmt, ProbeConfig(shots=2, demo_sets=2)))
    assert all(r.correct and r.views == 2 for r in recs)


def test_qa_scores_exactly_the_plain_sft_prompt():
    """A model tuned with the plain template is read with the prompt it was trained on, character for
    character (a stray space or colon would shift every score)."""
    statements = ["Ada was born in", "Ada's birthplace is", "Ada came from"]
    q = Question(
        "q0", "  Where was Ada born?  ", ("Paris", "Rome"), 1, metadata={"cloze_prompts": statements}
    )
    group = Group("H", "one item", (GroupItem(q.id, 1, "gold", 1, 1, 0.9),))
    (example,) = render_group(group, {q.id: q}, RenderConfig(template="plain"))
    assert example.prompt == "Question: Where was Ada born?\nAnswer:"
    assert get_format("qa").cloze_contexts(q) == [example.prompt]  # qa ignores the statements
    assert get_format("cloze").cloze_contexts(q) == statements  # cloze reads them, one view each
    assert get_format("cloze").cloze_contexts(Question("q1", " Ada? ", ("x", "y"), 0)) == ["Ada?\nAnswer:"]
    recs = list(probe(PositionBiasedScorer(), [q], [q], get_format("qa"), ProbeConfig(shots=0)))
    assert recs[0].views == 1 and recs[0].format == "qa@1"
    with pytest.raises(ValueError, match="qa@1 scores statements zero-shot"):
        list(probe(PositionBiasedScorer(), [q], [q], get_format("qa"), ProbeConfig(shots=1)))


def test_formats_declare_what_they_score():
    """Code reads these declarations, never a format's name: they are the formats' behaviour."""
    declared = {
        name: (f.mode, f.views, f.zero_shot_only, f.uses_chat_template, f.demo_answer)
        for name, f in FORMATS.items()
    }
    letter = ("letter", "demo-sets x permutations", False)
    assert declared == {
        "paper": (*letter, False, "letter. text"),
        "paper-original": (*letter, False, "letter. text"),
        "mmlu": (*letter, False, "letter"),
        "chat": (*letter, True, "letter. text"),
        "continuation": ("continuation", "demo-sets", False, False, "letter. text"),
        "qa": ("continuation", "statements", True, False, "letter. text"),
        "cloze": ("continuation", "statements", True, False, "letter. text"),
        # trained formats: zero-shot, the SFT prompt; the letter when the options were shown
        "sft-plain-options": ("letter", "demo-sets x permutations", True, False, "letter. text"),
        "sft-vicuna": ("continuation", "statements", True, False, "letter. text"),
        "sft-vicuna-options": ("letter", "demo-sets x permutations", True, False, "letter. text"),
        "sft-chat": ("continuation", "statements", True, True, "letter. text"),
        "sft-chat-options": ("letter", "demo-sets x permutations", True, True, "letter. text"),
    }
    assert {(f.template, f.mode) for f in FORMATS.values() if f.template} == {
        (t, m) for t in ("plain", "vicuna", "chat") for m in ("letter", "continuation")
    }
    assert get_format("paper").with_tokenizer(object()) is get_format("paper")  # no chat template used
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        get_format("chat").letter_context()
    with pytest.raises(ValueError, match=r"unknown prompt format 'nope'; choose from \['chat', 'cloze'"):
        get_format("nope")


def test_a_misdeclared_format_fails_when_registered():
    with pytest.raises(ValueError, match="views 'statements' with mode 'letter'"):
        PromptFormat(name="x", version=1, about="", mode="letter", views="statements")
    with pytest.raises(ValueError, match="unknown demo_answer"):
        PromptFormat(
            name="x", version=1, about="", mode="letter", views="demo-sets x permutations", demo_answer="?"
        )


def test_paper_format_on_a_tokenizer_that_merges_the_cue_and_letter_names_what_works(real_model):
    """tekken (as Llama-3 and Qwen2) makes 'Answer:C' ['Answer', ':C']: the bare letter `paper`
    scores is no token there. The error names the formats that work; mmlu (' C') does."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from iftscope.models.scorer import HFScorer
    from iftscope.probe.knowledge import letter_token_ids

    folder = real_model("qwen2", "tekken")
    scorer = HFScorer(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder))
    with pytest.raises(ValueError, match=r"format paper@1 cannot be scored.*--format mmlu .* or chat"):
        letter_token_ids(scorer, get_format("paper"), 4)
    ids = letter_token_ids(scorer, get_format("mmlu"), 4)
    assert scorer.tokenizer.convert_ids_to_tokens(ids) == ["ĠA", "ĠB", "ĠC", "ĠD"]
