"""The probe stage in every registered format on real production tokenizers and architectures.

Each format must either probe a real model end to end (records, summary, letter ids one token in
context) or refuse up front with a message that names what works (the `paper` format on tekken,
where ':C' is one token; a chat format on a tokenizer without a chat template)."""

import json

import pytest
from conftest import SHARED_DATA

from iftscope.data.loaders import load_questions
from iftscope.probe.formats import FORMATS
from iftscope.probe.knowledge import ProbeConfig
from iftscope.stages.model import ModelSpec
from iftscope.stages.probe import CacheConfig, probe_stage

pytestmark = pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")

MODELS = [
    ("llama", "sp-converted"),
    ("mistral", "sp-legacy"),
    ("mistral", "sp-instruct"),
    ("qwen2", "tekken"),
]


def _refusal(name: str, kind: str, has_chat_template: bool) -> str | None:
    """What a format must say instead of probing, on this tokenizer (None: it must probe)."""
    fmt = FORMATS[name]
    if fmt.uses_chat_template and not has_chat_template:
        return "chat template"
    if kind == "tekken" and fmt.mode == "letter" and not fmt.letter_prefix and not fmt.uses_chat_template:
        return "mmlu"  # 'Answer:' + 'C' merges into ':C': the message names the formats that work
    return None


@pytest.mark.parametrize(("arch", "kind"), MODELS)
def test_every_format_probes_a_real_model_or_says_what_works(arch, kind, real_model, tmp_path):
    questions = load_questions(SHARED_DATA / "xiezhi" / "engineering" / "dev.jsonl")[:4]
    from transformers import AutoTokenizer

    folder = real_model(arch, kind)
    model, has_chat = ModelSpec(str(folder)), bool(AutoTokenizer.from_pretrained(folder).chat_template)
    for name, fmt in FORMATS.items():
        cfg = ProbeConfig(format=name, shots=0 if fmt.zero_shot_only or fmt.template else 2, demo_sets=1)
        out = tmp_path / name
        refusal = _refusal(name, kind, has_chat)
        if refusal:
            with pytest.raises(ValueError, match=refusal):
                probe_stage(model, questions, cfg, out, cache=CacheConfig(enabled=False), progress=False)
            continue
        summary = probe_stage(
            model, questions, cfg, out, cache=CacheConfig(enabled=False), progress=False
        ).summary
        rows = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
        assert len(rows) == len(questions) and {r["format"] for r in rows} == {fmt.id}, name
        assert all(abs(sum(r["distribution"]) - 1) < 1e-6 for r in rows), name
        if fmt.mode == "letter":
            assert len(set(summary["scored_token_ids"])) == 4, name
