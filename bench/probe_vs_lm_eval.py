"""Our probe against EleutherAI lm-evaluation-harness: same model, questions and prompt.

For each model (a micro-world base model, a random ~20M-parameter Llama with a BPE tokenizer
trained on the spot) and each mode at k shots (letter: "Answer:" then " A"; continuation: each
option's text), both tools score the same questions with the same demonstrations (the pool's
first k, lm-eval's `first_n` sampler). Reported: the largest per-option log-likelihood difference,
argmax agreement, and wall time alternating A/B over several repetitions (models loaded once,
outside the timing; our score cache off).

    pip install lm-eval
    python bench/probe_vs_lm_eval.py --world runs/default/world --data ../shared/data/xiezhi/engineering

Writes bench/results/probe_vs_lm_eval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from iftscope.data import load_questions  # noqa: E402
from iftscope.models.load import load_model  # noqa: E402
from iftscope.models.scorer import HFScorer  # noqa: E402
from iftscope.probe.formats import get_format  # noqa: E402
from iftscope.probe.knowledge import ProbeConfig, choose_demos, letter_token_ids, probe  # noqa: E402
from iftscope.types import LETTERS  # noqa: E402

TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {test}
    dev: {dev}
test_split: test
fewshot_split: dev
fewshot_config:
  sampler: first_n
output_type: multiple_choice
description: "{description}\\n\\n"
doc_to_text: "{doc_to_text}"
doc_to_choice: {doc_to_choice}
doc_to_target: answer
target_delimiter: " "
fewshot_delimiter: "\\n\\n"
metric_list:
  - metric: acc
"""


def write_task(folder: Path, name: str, mode: str, domain: str, n_opt: int, test: Path, dev: Path) -> None:
    if mode == "letter":
        description = get_format("mmlu").header.format(domain=domain)
        lines = "".join(f"\\n{LETTERS[i]}. {{{{choices[{i}]}}}}" for i in range(n_opt))
        doc_to_text = "{{question.strip()}}" + lines + "\\nAnswer:"
        choice = json.dumps(list(LETTERS[:n_opt]))
    else:
        description = get_format("continuation").header.format(domain=domain)
        doc_to_text = "Question: {{question.strip()}}\\nAnswer:"
        choice = '"{{choices}}"'
    (folder / f"{name}.yaml").write_text(
        TASK.format(
            name=name,
            test=test,
            dev=dev,
            description=description,
            doc_to_text=doc_to_text,
            doc_to_choice=choice,
        )
    )


def random_llama(texts: list[str], seed: int = 0):
    """About 20M parameters, BPE vocabulary trained on the questions themselves."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8000,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(texts, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=384,
        intermediate_size=1024,
        num_hidden_layers=8,
        num_attention_heads=6,
        num_key_value_heads=6,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval(), tok


def ours(model, tok, questions, pool, fmt_name: str, shots: int, batch: int):
    """Per question: our per-option log-likelihoods (for agreement) and the timed probe."""
    fmt = get_format(fmt_name)
    scorer = HFScorer(model, tok, batch_size=batch)
    cfg = ProbeConfig(format=fmt_name, shots=shots, demos="first", batch_questions=256)
    t0 = time.perf_counter()
    records = list(probe(scorer, questions, pool, fmt, cfg))
    seconds = time.perf_counter() - t0
    if fmt.mode == "letter":
        ids = letter_token_ids(scorer, fmt, len(questions[0].choices))
        prompts = [fmt.letter_prompt(q, q.choices, choose_demos(q, pool, cfg, 0)) for q in questions]
        ll = scorer.letter_logprobs(prompts, ids).logprobs
    else:
        pairs = [
            (fmt.continuation_context(q, choose_demos(q, pool, cfg, 0)), " " + c)
            for q in questions
            for c in q.choices
        ]
        ll = np.array([s.logprob for s in scorer.continuation_logprobs(pairs)]).reshape(len(questions), -1)
    return ll, [r.prediction for r in records], seconds


def theirs(lm, task_dir: Path, name: str, shots: int):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    t0 = time.perf_counter()
    out = simple_evaluate(
        model=lm,
        tasks=[name],
        num_fewshot=shots,
        task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True,
        bootstrap_iters=0,
        verbosity="ERROR",
    )
    seconds = time.perf_counter() - t0
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    ll = np.array([[r[0][0] for r in s["resps"]] for s in samples])
    return ll, seconds


def compare(label, model, tok, questions, pool, domain, shots, reps, batch, workdir: Path) -> list[dict]:
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch, device="cpu")
    test, dev = workdir / f"{label}-test.jsonl", workdir / f"{label}-dev.jsonl"

    def plain(q):  # the columns both splits share
        return json.dumps(
            {"id": q.id, "question": q.question, "choices": list(q.choices), "answer": q.answer}
        )

    test.write_text("".join(plain(q) + "\n" for q in questions))
    dev.write_text("".join(plain(q) + "\n" for q in pool[: shots + 1]))
    rows = []
    for mode, fmt_name in (("letter", "mmlu"), ("continuation", "continuation")):
        name = f"iftscope_{label}_{mode}".replace("-", "_")
        write_task(workdir, name, mode, domain, len(questions[0].choices), test, dev)
        ours_t, theirs_t = [], []
        for _ in range(reps):  # alternate A/B so drifts in machine load hit both
            ll_a, pred_a, t_a = ours(model, tok, questions, pool, fmt_name, shots, batch)
            ll_b, t_b = theirs(lm, workdir, name, shots)
            ours_t.append(t_a)
            theirs_t.append(t_b)
        row = {
            "model": label,
            "parameters": sum(p.numel() for p in model.parameters()),
            "mode": mode,
            "shots": shots,
            "questions": len(questions),
            "max_abs_loglik_diff": float(np.abs(ll_a - ll_b).max()),
            "argmax_agreement": float(np.mean(ll_a.argmax(1) == ll_b.argmax(1))),
            "probe_prediction_agreement": float(np.mean(np.array(pred_a) == ll_b.argmax(1))),
            "ours_seconds": ours_t,
            "lm_eval_seconds": theirs_t,
            "speedup_median": statistics.median(theirs_t) / statistics.median(ours_t),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, default=Path("runs/default/world"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xiezhi/engineering"))
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "probe_vs_lm_eval.json")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if (args.world / "model").exists():
            model, tok = load_model(args.world / "model")
            qs = load_questions(args.world / "questions.jsonl")
            known = [q for q in qs if q.metadata.get("known") and q.domain == "birth_city"]
            rows += compare(
                "micro-world",
                model,
                tok,
                known[: args.questions],
                known[-50:],
                "birth city",
                args.shots,
                args.reps,
                args.batch_size,
                work,
            )
        else:
            print(f"no world at {args.world}: skipping the micro-world model (iftscope world --out ...)")
        test = load_questions(args.data / "test.jsonl")[: args.questions]
        dev = load_questions(args.data / "dev.jsonl")
        texts = [q.question + " " + " ".join(q.choices) for q in [*test, *dev]]
        model, tok = random_llama(texts * 3)
        domain = (test[0].domain or "general knowledge").replace("_", " ")
        rows += compare(
            "llama-20m", model, tok, test, dev, domain, args.shots, args.reps, args.batch_size, work
        )
    import lm_eval

    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}",
        "lm_eval": lm_eval.__version__,
        "command": "python " + " ".join(sys.argv),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
