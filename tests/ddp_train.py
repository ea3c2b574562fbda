"""Run by test_ddp_slow.py under torchrun: train a 2-layer model with LoRA, same data and seed."""

import sys
from pathlib import Path

from iftscope.intervene.render import RenderConfig, render_group
from iftscope.microworld.generator import WorldConfig, make_people, make_questions, vocabulary
from iftscope.microworld.tiny import TinyModelConfig, build_model
from iftscope.microworld.tokenizer import build_word_tokenizer
from iftscope.train.sft import SFTConfig, train_sft
from iftscope.types import Group, GroupItem

if __name__ == "__main__":
    out, lora = Path(sys.argv[1]), sys.argv[2] == "lora"
    tok = build_word_tokenizer(vocabulary())
    cfg = WorldConfig(seed=3, people=20, unknown=10)
    questions = make_questions(make_people(cfg), cfg)
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 0.9) for q in questions[:40])
    examples = render_group(
        Group("H", "", items), {q.id: q for q in questions}, RenderConfig(styles=("explained",))
    )
    model = build_model(
        TinyModelConfig(hidden=32, layers=2, heads=2, mlp=64, max_positions=128),
        len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, seed=0,
    )  # fmt: skip
    sft = SFTConfig(steps=8, batch_size=8, lr=1e-2, warmup=2, lora=lora, checkpoint_every=0)
    train_sft(model, tok, examples, out, sft, progress=False)
