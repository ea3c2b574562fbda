"""`iftscope run` with training under `accelerate launch`: two CPU processes (gloo) stand in for two
GPUs. The study's other stages run in the main process; the loss curve is the one-process curve."""

import json

import pytest
from test_study import TINY

from iftscope.study.launch import LaunchConfig, launch_command
from iftscope.study.recipe import load_recipe
from iftscope.study.runner import Study

ONE_JOB = [*TINY, "seeds=[0]", "groups=[H]", "render.styles=[answer]", "train.checkpoint_every=2"]


def test_launch_command_names_the_job_and_the_config(tmp_path):
    cmd = launch_command(LaunchConfig(processes=4, main_process_port=29555), tmp_path, 1, "H", "answer")
    assert cmd[-6:] == ["-m", "iftscope.study.child", str(tmp_path), "1", "H", "answer"]
    assert cmd[cmd.index("--main_process_port") + 1] == "29555"
    assert "--multi_gpu" in cmd and cmd[cmd.index("--num_processes") + 1] == "4"
    conf = tmp_path / "fsdp.yaml"
    conf.write_text("distributed_type: FSDP\n")
    cmd = launch_command(LaunchConfig(config_file=str(conf)), tmp_path, 0, "S", "answer")
    assert cmd[cmd.index("--config_file") + 1] == str(conf) and "--multi_gpu" not in cmd
    with pytest.raises(FileNotFoundError, match="launch.config_file"):
        launch_command(LaunchConfig(config_file=str(tmp_path / "missing.yaml")), tmp_path, 0, "S", "answer")


def test_study_trains_under_accelerate_launch(tmp_path):
    one, _ = load_recipe(None, ONE_JOB)
    two, _ = load_recipe(None, [*ONE_JOB, "launch.processes=2"])
    a = Study(one, tmp_path / "one", progress=False).run()
    b = Study(two, tmp_path / "two", progress=False).run()
    ta = json.loads((tmp_path / "one" / "train" / "H" / "answer" / "s0" / "train.json").read_text())
    tb = json.loads((tmp_path / "two" / "train" / "H" / "answer" / "s0" / "train.json").read_text())
    assert ta["processes"] == 1 and tb["processes"] == 2
    assert [r["loss"] for r in tb["log"]] == pytest.approx([r["loss"] for r in ta["log"]], abs=1e-4)
    assert (tmp_path / "two" / "train" / "H" / "answer" / "s0" / "launch.log").exists()
    assert b["table"].keys() == a["table"].keys() == {"base", "H/answer"}
    assert a["verdict"] == b["verdict"]
    assert a["verdict"].startswith("Not enough groups to judge (the primary contrast needs both")


def test_shipped_recipes_load_with_their_settings():
    from iftscope.study.recipe import shipped as _shipped

    cfgs = {name: load_recipe(_shipped(name))[0] for name in ("default", "smoke", "paper", "paper-lora")}
    assert cfgs["default"].launch == LaunchConfig() and cfgs["default"].device == "auto"
    paper, lora = cfgs["paper"], cfgs["paper-lora"]
    assert paper.launch.processes == 8 and not paper.train.lora and paper.render.template == "vicuna"
    assert lora.launch.processes == 1 and lora.train.lora and lora.dtype == paper.dtype == "bfloat16"
    assert (
        paper.probe.format == "paper"
        and paper.probe.shots == 5
        and set(paper.data.tests) == {"HOMO", "ID", "OOD"}
    )


def test_the_main_process_lets_go_of_its_models_before_a_launch(tmp_path, monkeypatch):
    """Launched training processes need the GPUs' memory: the base model the main process keeps
    for token shift is dropped (and torch's cached GPU memory emptied) before each launch."""
    from iftscope.runfolder import Job, RunFolder
    from iftscope.study import jobs, launch

    cfg, _ = load_recipe(None, [*ONE_JOB, "launch.processes=2"])
    seen = []

    class Stop(Exception):
        pass

    def fake_launch(*args):
        seen.append(dict(jobs._BASE_MODELS))
        raise Stop

    monkeypatch.setattr(launch, "train_launched", fake_launch)
    monkeypatch.setitem(jobs._BASE_MODELS, "base", object())
    with pytest.raises(Stop):
        jobs.run_job(cfg, RunFolder(tmp_path), None, Job(0, "H", "answer"))
    assert seen == [{}]


def test_one_worker_per_gpu_each_pinned_to_its_own(monkeypatch):
    """On a machine with GPUs the jobs run one per GPU, each worker seeing only its GPU (named as
    CUDA_VISIBLE_DEVICES names them); under accelerate or a device map, one job at a time."""
    import queue

    import torch

    from iftscope.study import jobs

    auto = [*ONE_JOB, "workers=0"]  # TINY asks for one worker
    cfg, _ = load_recipe(None, auto)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert jobs._gpu_ids() == ["0", "1", "2"] and jobs.workers(cfg, 10) == 3 and jobs.workers(cfg, 2) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    assert jobs._gpu_ids() == ["4", "6", "7"]
    for override in ("launch.processes=2", "device=map"):
        assert jobs.workers(load_recipe(None, [*auto, override])[0], 10) == 1, override
    assert jobs.workers(load_recipe(None, [*ONE_JOB, "workers=8"])[0], 10) == 3  # never more than GPUs
    ids = queue.Queue()
    ids.put("6")
    jobs._pin_gpu(ids)
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == "6"
