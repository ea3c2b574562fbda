"""Real production tokenizers and tiny random models of real architectures, for tests.

The `mistral-common` wheel (test extra) ships Mistral's tokenizer files. From them we build, in a
folder each, what users load with `AutoTokenizer.from_pretrained`:

- `sp-converted`: `tokenizer.model.v1` (SentencePiece, 32k, the Llama-2 / Mistral-7B-v0.1 family)
  as transformers converts it (Metaspace pre-tokenizer, prepend "▁" to the first word only);
- `sp-legacy`: the same vocabulary as Llama-2 and Mistral-7B-v0.1 ship their `tokenizer.json`: the
  sentencepiece library's behaviour (normalizer: prepend "▁", every space to "▁"), under which
  " C. text" alone is ['▁', '▁C', '.', '▁text'];
- `sp-instruct`: the v3 instruct SentencePiece model with an [INST] chat template;
- `tekken`: a tiktoken-style byte-level BPE (131k), where ":C" is one token, as in Llama-3/Qwen2.

`tiny_model(arch, kind, folder)` saves a random-initialised 2-layer, hidden-64 Llama, Mistral or
Qwen2 with that vocabulary (safetensors) beside its tokenizer: a model folder like a hub download.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

mistral_common = pytest.importorskip("mistral_common")
DATA = Path(mistral_common.__file__).parent / "data"

KINDS = ("sp-converted", "sp-legacy", "sp-instruct", "tekken")
ARCHS = ("llama", "mistral", "qwen2")
INST_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
LEGACY_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
    ],
}


def _sentencepiece(folder: Path, model_file: str, chat_template: str | None = None):
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / model_file, folder / "tokenizer.model")
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
    }
    if chat_template:
        config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return AutoTokenizer.from_pretrained(folder)


def _legacy(folder: Path):
    """The converted tokenizer with Llama-2's shipped normalizer and no pre-tokenizer."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok = _sentencepiece(folder, "tokenizer.model.v1")
    spec = json.loads(tok.backend_tokenizer.to_str())
    spec["normalizer"], spec["pre_tokenizer"] = LEGACY_NORMALIZER, None
    tok.save_pretrained(folder)
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    (folder / "tokenizer.model").unlink()  # only tokenizer.json: as the hub folders load fast
    # transformers 5's LlamaTokenizer rebuilds its pipeline (Metaspace); the generic backend keeps
    # tokenizer.json as written, which is what transformers 4 users of Llama-2 get
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config))
    Tokenizer.from_file(str(folder / "tokenizer.json"))  # valid
    return AutoTokenizer.from_pretrained(folder)


def _tekken(folder: Path):
    from transformers.integrations.mistral import convert_tekken_tokenizer

    tok = convert_tekken_tokenizer(str(DATA / "tekken_240911.json"))
    tok.save_pretrained(folder)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def build_tokenizer(kind: str, folder: str | Path):
    """Write tokenizer `kind` (see KINDS) into `folder`; returns it loaded back from there."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "sp-converted":
        return _sentencepiece(folder, "tokenizer.model.v1")
    if kind == "sp-legacy":
        return _legacy(folder)
    if kind == "sp-instruct":
        return _sentencepiece(folder, "mistral_instruct_tokenizer_240323.model.v3", INST_TEMPLATE)
    if kind == "tekken":
        return _tekken(folder)
    raise ValueError(f"unknown tokenizer kind {kind!r}; choose from {KINDS}")


def tiny_model(
    arch: str, kind: str, folder: str | Path, seed: int = 0, dtype: str = "float32", hidden: int = 64
) -> Path:
    """A random 2-layer model of `arch` (width `hidden`, MLP 2x) with tokenizer `kind`, in `folder`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    tok = build_tokenizer(kind, folder)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
        tok.save_pretrained(folder)
    config = AutoConfig.for_model(
        arch,
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=kind == "tekken",  # 131k x 64: one matrix, not two
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


COLOURS = ("red", "blue", "green", "black")


def item(n: int):
    """A pool-like question: which of four colours object n has."""
    from iftscope.types import Question

    return Question(f"x{n}", f"Which colour is object {n}?", COLOURS, n % 4, domain="colours")


def tiny_writer(folder: str | Path, steps: int = 100, lr: float = 3e-3) -> Path:
    """The tiny random Llama of realmodels, taught the written-item format by plain next-token
    training on writing prompts followed by one more item (seeded), saved back (safetensors)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from iftscope.intervene.written import writing_prompt

    folder = Path(folder)
    tiny_model("llama", "sp-converted", folder)
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    rng, eos = random.Random(0), tok.eos_token_id
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        rows = []
        for _ in range(4):
            new = item(rng.randrange(1000))  # the loss ~0.29 after 80 steps; its floor is ~0.22
            text = "\n".join([new.question] + [f"{chr(65 + i)}. {c}" for i, c in enumerate(COLOURS)])
            prompt = tok(writing_prompt([item(rng.randrange(1000))]))["input_ids"]
            rows.append(prompt + tok(text, add_special_tokens=False)["input_ids"] + [eos])
        width = max(map(len, rows))
        x = torch.tensor([r + [eos] * (width - len(r)) for r in rows])
        y = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
        model(input_ids=x, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(folder, safe_serialization=True)
    return folder
