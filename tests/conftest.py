"""Shared fixtures: a tiny world and a 2-layer model built on the spot (well under a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iftscope.microworld.generator import WorldConfig, make_people, make_questions, vocabulary
from iftscope.microworld.pretrain import PretrainConfig
from iftscope.microworld.stage import WorldStageConfig
from iftscope.microworld.tiny import TinyModelConfig, build_model
from iftscope.microworld.tokenizer import build_word_tokenizer
from iftscope.types import ProbeRecord

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY_MODEL = TinyModelConfig(hidden=32, layers=2, heads=2, mlp=64, max_positions=128)


@pytest.fixture(scope="session")
def tokenizer():
    return build_word_tokenizer(vocabulary())


@pytest.fixture(scope="session")
def tiny_world():
    cfg = WorldConfig(seed=3, people=20, unknown=10)
    people = make_people(cfg)
    return cfg, people, make_questions(people, cfg)


@pytest.fixture
def tiny_model(tokenizer):
    return build_model(
        TINY_MODEL,
        len(tokenizer),
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        seed=0,
    )


def tiny_stage_config(steps: int = 12, seed: int = 3) -> WorldStageConfig:
    return WorldStageConfig(
        world=WorldConfig(seed=seed, people=20, unknown=10),
        model=TINY_MODEL,
        pretrain=PretrainConfig(
            steps=steps, batch_size=4, seq_len=32, warmup=2, eval_every=5, checkpoint_every=5
        ),
    )


def peaked(prediction: int, confidence: float, n_options: int = 4) -> tuple[float, ...]:
    """A distribution with `confidence` on one option and the rest shared equally by the others."""
    rest = (1 - confidence) / (n_options - 1)
    return tuple(confidence if i == prediction else rest for i in range(n_options))


def make_record(
    question_id: str = "q", gold: int = 0, distribution: tuple[float, ...] = (0.7, 0.1, 0.1, 0.1), **overrides
) -> ProbeRecord:
    """A ProbeRecord whose fields agree with its distribution, as one probe view would give them:
    prediction = argmax, correct, confidence, gold_prob; all mass on the options (gold_abs_prob =
    gold_prob * option_mass); known by the default generative rule (gold_abs_prob >= 0.5); the
    confidence category from the one view. Any field can be overridden by keyword."""
    dist = tuple(float(x) for x in distribution)
    pred = max(range(len(dist)), key=dist.__getitem__)
    correct = pred == gold
    option_mass = overrides.get("option_mass", 1.0)
    gold_abs = overrides.get("gold_abs_prob", dist[gold] * option_mass)
    fields = {
        "question_id": question_id,
        "domain": "d",
        "gold": gold,
        "distribution": dist,
        "prediction": pred,
        "correct": correct,
        "confidence": dist[pred],
        "gold_prob": dist[gold],
        "option_mass": option_mass,
        "gold_abs_prob": gold_abs,
        "known": gold_abs >= 0.5,
        "view_accuracy": float(correct),
        "sampled_accuracy": dist[gold],  # one view sampled at temperature 1
        "category": "AllViewsRight"
        if correct
        else ("GoldPlausible" if dist[gold] >= 1 / 16 else "GoldImplausible"),
        "format": "paper@1",
        "views": 1,
    }
    return ProbeRecord(**{**fields, **overrides})


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory):
    """A 2-layer Llama with a byte-level BPE tokenizer trained on the spot, saved as a model folder.

    Byte-level BPE makes "A" and " A" different tokens, as in real LLM vocabularies, so the letter
    formats' token choice is exercised for real.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    corpus = [
        "The following are multiple choice questions about engineering. Please choose the correct "
        "answer.\nA. B. C. D. Answer:A Answer:B Answer:C Answer:D Answer: A Answer: B Answer: C",
        "Which of the following is a bridge? Tao Te Ching, arithmetic, palace, emperor",
    ] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    import torch

    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-bpe-llama")
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def _score_cache(tmp_path, monkeypatch):
    """Tests never read or write the user's score cache."""
    monkeypatch.setenv("IFTSCOPE_CACHE", str(tmp_path / "score-cache"))


def xiezhi_subset(folder: Path, roles: dict[str, tuple[str, int]]) -> dict[str, Path]:
    """role -> a file in `folder` holding the first n questions of ../shared/data/xiezhi/<path>.jsonl
    (roles: role -> (path, n)); the shared files are read, never copied into the repository."""
    out = {}
    for role, (path, n) in roles.items():
        rows = (SHARED_DATA / "xiezhi" / f"{path}.jsonl").read_text().splitlines()[:n]
        out[role] = folder / f"{role}.jsonl"
        out[role].write_text("\n".join(rows) + "\n")
    return out


@pytest.fixture(scope="session")
def real_model(tmp_path_factory):
    """real_model(arch, kind) -> the folder of a tiny random `arch` model (llama, mistral, qwen2)
    with a real production tokenizer `kind` (sp-converted, sp-legacy, sp-instruct, tekken; see
    tests/realmodels.py), built once per session. Treat it as read-only."""
    from realmodels import tiny_model

    made: dict[tuple[str, str], Path] = {}

    def get(arch: str = "llama", kind: str = "sp-converted") -> Path:
        if (arch, kind) not in made:
            made[arch, kind] = tiny_model(arch, kind, tmp_path_factory.mktemp(f"{arch}-{kind}"))
        return made[arch, kind]

    return get


@pytest.fixture(scope="session")
def real_tokenizer(tmp_path_factory):
    """real_tokenizer(kind) -> a real production tokenizer (see tests/realmodels.py), loaded once."""
    from realmodels import build_tokenizer

    made: dict[str, object] = {}

    def get(kind: str = "sp-converted"):
        if kind not in made:
            made[kind] = build_tokenizer(kind, tmp_path_factory.mktemp(f"tok-{kind}"))
        return made[kind]

    return get


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """A finished tiny study (one seed, three jobs, about a minute): (recipe overrides, config, run
    folder, summary), shared by the reliability tests that damage or interrupt copies of it."""
    from test_study import TINY

    from iftscope.study.recipe import load_recipe
    from iftscope.study.runner import Study

    overrides = [*TINY, "seeds=[0]", "render.styles=[answer]", "groups=[H,I,S]", "generation_questions=0"]
    out = tmp_path_factory.mktemp("small-study") / "clean"
    cfg, _ = load_recipe(None, overrides)
    return overrides, cfg, out, Study(cfg, out, progress=False).run()


@pytest.fixture(scope="session")
def real_writer(tmp_path_factory):
    """real_writer() -> the folder of a tiny Llama with Llama-2's SentencePiece tokenizer, taught to
    write multiple-choice items (realmodels.tiny_writer: about 15 s), built once per session."""
    made: list[Path] = []

    def get() -> Path:
        if not made:
            import torch
            from realmodels import tiny_writer

            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # a tiny model on a busy host
            try:
                made.append(tiny_writer(tmp_path_factory.mktemp("writer")))
            finally:
                torch.set_num_threads(threads)
        return made[0]

    return get
