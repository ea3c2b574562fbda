"""Several LoRA adapters on one base in one forward/backward pass (train.multi) against the same
jobs trained one at a time (train.sft): the same adapter weights and losses to 1e-5 (fp32, CPU),
per-job checkpoints and resume, routing of each example to its own adapter."""

import copy
import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from iftscope.intervene.render import RenderConfig, render_group
from iftscope.train.adapter_store import resumable
from iftscope.train.multi import AdapterJob, train_adapters
from iftscope.train.sft import SFTConfig, train_sft
from iftscope.types import Group, GroupItem

CFG = SFTConfig(
    steps=6, batch_size=4, lr=1e-2, warmup=2, checkpoint_every=0, target_modules=("q_proj", "v_proj")
)


def job_examples(tiny_world, lo, n):
    _, _, questions = tiny_world
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 0.9) for q in questions[lo : lo + n])
    return render_group(Group("H", "test", items), {q.id: q for q in questions}, RenderConfig())


def three_jobs(tiny_world, tmp_path, **changes):
    """Three jobs unlike each other: other examples (and counts), seeds, rates, micro-batches."""
    cfgs = [
        replace(CFG, seed=0, **changes),
        replace(CFG, seed=1, lr=5e-3, micro_batch_size=2, **changes),
        replace(CFG, seed=2, steps=4, batch_size=3, grad_clip=0.05, **changes),
    ]
    return [
        AdapterJob(job_examples(tiny_world, 6 * i, 7 + i), tmp_path / f"job{i}", cfg)
        for i, cfg in enumerate(cfgs)
    ]


def alone(tiny_model, tokenizer, job, out):
    return train_sft(copy.deepcopy(tiny_model), tokenizer, job.examples, out, job.cfg, progress=False)


def weights(folder):
    return load_file(str(folder / "model" / "adapter_model.safetensors"))


def assert_same(one, together, tol=1e-5):
    a, b = weights(one), weights(together)
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=tol, rtol=0)
    la = [r["loss"] for r in json.loads((one / "train.json").read_text())["log"]]
    lb = [r["loss"] for r in json.loads((together / "train.json").read_text())["log"]]
    assert len(la) == len(lb) and max(abs(x - y) for x, y in zip(la, lb, strict=True)) <= tol


def test_three_adapters_in_one_pass_train_as_three_runs_alone(tiny_model, tokenizer, tiny_world, tmp_path):
    jobs = three_jobs(tiny_world, tmp_path / "together")
    base = copy.deepcopy(tiny_model)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    summaries = train_adapters(base, tokenizer, jobs)
    for i, job in enumerate(jobs):
        alone(tiny_model, tokenizer, job, tmp_path / f"alone{i}")
        assert_same(tmp_path / f"alone{i}", job.out)
        assert summaries[i]["adapters_per_pass"] == 3 and not (job.out / "checkpoint").exists()
    # the base comes back as it was, without adapters
    assert {k: v for k, v in base.state_dict().items()}.keys() == before.keys()
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    # the adapters really differ (each saw its own examples, seed, rate)
    w = [weights(j.out) for j in jobs]
    key = next(k for k in w[0] if "lora_B" in k)
    assert not torch.allclose(w[0][key], w[1][key]) and not torch.allclose(w[1][key], w[2][key])


def test_each_example_goes_through_its_own_adapter(tiny_model, tokenizer, tiny_world, tmp_path):
    """A job trained beside a job with a huge learning rate ends as it ends alone: no gradient and
    no activation of another adapter reaches it."""
    jobs = three_jobs(tiny_world, tmp_path / "t")[:2]
    wild = replace(jobs[1], cfg=replace(jobs[1].cfg, lr=1.0, grad_clip=0.0))
    train_adapters(copy.deepcopy(tiny_model), tokenizer, [jobs[0], wild])
    alone(tiny_model, tokenizer, jobs[0], tmp_path / "alone")
    assert_same(tmp_path / "alone", jobs[0].out)


def test_per_job_checkpoints_resume_to_the_uninterrupted_result(tiny_model, tokenizer, tiny_world, tmp_path):
    jobs = three_jobs(tiny_world, tmp_path / "crash", checkpoint_every=2)
    seen = []

    def crash(model, step):
        seen.append(step)
        if step == 3:
            raise KeyboardInterrupt
        return {}

    first = [replace(jobs[0], evaluate=crash, evaluate_every=1), *jobs[1:]]
    with pytest.raises(KeyboardInterrupt):
        train_adapters(copy.deepcopy(tiny_model), tokenizer, first)
    for job in jobs:  # every job checkpointed at step 2, none finished
        state = json.loads((job.out / "checkpoint" / "state.json").read_text())
        assert state["step"] == 2 and not (job.out / "train.json").exists() and resumable(job.out)
    summaries = train_adapters(copy.deepcopy(tiny_model), tokenizer, jobs)
    assert [s["resumed_from_step"] for s in summaries] == [2, 2, 2]
    clean = three_jobs(tiny_world, tmp_path / "clean", checkpoint_every=2)
    train_adapters(copy.deepcopy(tiny_model), tokenizer, clean)
    for job, ref in zip(jobs, clean, strict=True):
        assert_same(ref.out, job.out, tol=0)  # the same pass, resumed: bit for bit


def test_what_one_pass_cannot_do_is_refused(tiny_model, tokenizer, tiny_world, tmp_path):
    job = three_jobs(tiny_world, tmp_path)[0]
    with pytest.raises(ValueError, match="full fine-tuning"):
        train_adapters(tiny_model, tokenizer, [replace(job, cfg=replace(job.cfg, lora=False))])
    with pytest.raises(ValueError, match="lora_dropout"):
        train_adapters(tiny_model, tokenizer, [replace(job, cfg=replace(job.cfg, lora_dropout=0.1))])


def _close(a, b, path="", tol=1e-5):
    """Where two summaries differ beyond `tol` (numbers) or at all (anything else)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _close(a.get(k), b.get(k), f"{path}.{k}", tol)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _close(x, y, f"{path}[{i}]", tol)
        ]
    if isinstance(a, float) and isinstance(b, float):
        return [] if a == b or abs(a - b) <= tol or (a != a and b != b) else [path]
    return [] if a == b else [path]


@pytest.mark.slow  # two tiny studies: about a minute on 2 idle cores
def test_a_study_gives_the_same_summary_with_adapters_sharing_the_base(tmp_path):
    from test_study import TINY

    from iftscope.study.recipe import load_recipe
    from iftscope.study.runner import Study

    tiny = [o for o in TINY if not o.startswith("seeds=")] + [
        "seeds=[0]",
        "groups=[H,S]",
    ]  # 4 jobs: a pass of 3, one of 1
    summaries = {}
    for k in (0, 3):
        cfg, _ = load_recipe(None, [*tiny, f"adapters_per_pass={k}"])
        Study(cfg, tmp_path / f"k{k}", progress=False).run()
        summaries[k] = json.loads((tmp_path / f"k{k}" / "analysis" / "summary.json").read_text())
    clocks = {"stage_seconds", "stage_clock", "seconds", "tokens_per_second", "model_identity", "recipe"}

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in clocks}
        return [strip(x) for x in v] if isinstance(v, list) else v

    assert _close(strip(summaries[0]), strip(summaries[3])) == []
    for k, s in summaries.items():
        assert {"load", "curve", "train", "evaluate"} <= s["stage_seconds"].keys()
        timing = json.loads((tmp_path / f"k{k}" / "train" / "H" / "answer" / "s0" / "train.json").read_text())
        assert {"load", "curve"} <= timing["timing"].keys(), timing.get("timing")
        assert timing.get("adapters_per_pass") == (3 if k else None)


def test_the_study_groups_lora_jobs_k_at_a_time_and_refuses_what_a_pass_cannot_do():
    from iftscope.runfolder import Job
    from iftscope.study.recipe import load_recipe
    from iftscope.study.shared import shared_plan
    from iftscope.study.validate import problems

    jobs = [Job(s, g, "answer") for s in (0, 1) for g in ("H", "I", "S")] + [Job(2, "H", "answer")]
    cfg, _ = load_recipe(None, ["adapters_per_pass=3"])
    tasks, _, _ = shared_plan(cfg, jobs)
    assert [len(t) for t in tasks] == [3, 3, 1] and [j for t in tasks for j in t] == jobs
    for off in (["adapters_per_pass=0"], ["adapters_per_pass=3", "train.lora=false"]):
        assert shared_plan(load_recipe(None, off)[0], jobs) is None  # one job per load, as today
    assert shared_plan(load_recipe(None, ["adapters_per_pass=3", "launch.processes=2"])[0], jobs) is None
    said = problems(load_recipe(None, ["adapters_per_pass=2", "train.lora_dropout=0.1"])[0])
    assert any(p.startswith("train.lora_dropout: 0.1 with adapters_per_pass 2") for p in said)
    assert any(
        p.startswith("adapters_per_pass: -1")
        for p in problems(load_recipe(None, ["adapters_per_pass=-1"])[0])
    )
