"""The study's typed configuration: one frozen dataclass per block of a recipe.

A recipe (YAML) is loaded into these by study.recipe; the CLI's flags are generated from the same
dataclasses, so a default or a help text is written once, here or in the stage's own config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iftscope.analyse.inference import ContrastsConfig
from iftscope.intervene.groups import InterveneConfig
from iftscope.intervene.render import RenderConfig
from iftscope.microworld.stage import WorldStageConfig
from iftscope.models.proxy_config import ProxyConfig
from iftscope.probe.formats import TRAINED_ALIAS, trained_format
from iftscope.probe.knowledge import ProbeConfig
from iftscope.stages.probe import CacheConfig
from iftscope.train.config import SFTConfig


@dataclass(frozen=True)
class LaunchConfig:
    processes: int = 1  # training processes per job (one per GPU); > 1: under accelerate launch
    config_file: str | None = None  # an `accelerate config` file: FSDP, DeepSpeed ZeRO, several nodes
    main_process_port: int = 0  # 0: a free port (several studies on one machine do not collide)

    @property
    def distributed(self) -> bool:
        return self.processes > 1 or self.config_file is not None


@dataclass(frozen=True)
class ExecutorConfig:
    """Where the study's (group, style, seed) jobs run: here, or one Slurm allocation each."""

    kind: str = "local"  # local (worker processes here), slurm (an allocation per job), submitit-local
    partition: str | None = None  # Slurm partition (None: the cluster's default)
    account: str | None = None  # Slurm account to charge
    gpus_per_job: int = 1  # GPUs per job; > 1 trains under accelerate launch on all of them
    cpus_per_job: int = 8  # CPU cores per job
    mem_gb: int = 64  # memory per job, GB
    time_min: int = 240  # wall-time limit per job, minutes
    sbatch: dict[str, str] = field(default_factory=dict)  # extra #SBATCH options, e.g. {qos: high}
    setup: tuple[str, ...] = ()  # shell lines run before each job (module load ..., source venv)
    max_running: int = 0  # jobs submitted at once (0: all; the scheduler queues them)
    poll_seconds: float = 30.0  # how often the waiting main process checks on its jobs

    @property
    def submitit(self) -> bool:
        return self.kind != "local"


@dataclass(frozen=True)
class DataConfig:
    """Real data instead of the micro-world: a base model and question files (paper JSONL, CSV...)."""

    model: str | None = None  # None: the micro-world's own base model
    ift: tuple[str, ...] = ()  # questions the groups are drawn from
    pool: tuple[str, ...] = ()  # demonstrations for letter formats (default: the IFT questions)
    tests: dict[str, str] = field(default_factory=dict)  # test-set name -> file (HOMO, ID, OOD ...)


@dataclass(frozen=True)
class StudyConfig:
    """A study. The field defaults are the stages' own; every recipe is read on top of the
    shipped default.yaml (the default micro-world study), which states the study's choices."""

    name: str = "default"
    seeds: tuple[int, ...] = (0,)  # training seeds: each job's group sampling, LoRA init, batch order
    groups: tuple[str, ...] = ()  # () = every group the data allows, less skip_groups
    skip_groups: tuple[str, ...] = ()  # groups left out
    world: WorldStageConfig = field(default_factory=WorldStageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    intervene: InterveneConfig = field(default_factory=InterveneConfig)  # its seed comes from `seeds`
    render: RenderConfig = field(default_factory=RenderConfig)  # its seed comes from `seeds`
    train: SFTConfig = field(default_factory=SFTConfig)  # its seed comes from `seeds`
    eval_format: str = "trained"  # how tuned models are read: "trained" = exactly as SFT prompted them
    workers: int = 0  # parallel train+eval processes; 0 = auto (one per GPU, else 1 on real data or 4 CPUs)
    adapters_per_pass: int = 0  # LoRA: 0 = a base load per job; K >= 1 = one per worker, K adapters a pass
    device: str = "auto"  # where models are scored: auto (a GPU if any), cpu, cuda:1 ..., map (over all GPUs)
    dtype: str = "float32"  # weights as loaded for scoring and training: float32, bfloat16, float16
    eval_batch_size: int = 256  # sequences per forward pass when scoring (lower it for 7B models)
    launch: LaunchConfig = field(default_factory=LaunchConfig)  # training on several GPUs/processes
    cache: CacheConfig = field(default_factory=CacheConfig)  # the probe's score cache
    contrasts: ContrastsConfig = field(default_factory=ContrastsConfig)  # the group differences tested
    generation_questions: int = 64  # generation mode and token shift on this many main-set questions
    curve_questions: int = 100  # QA accuracy during training on this many main-set questions (0 = off)
    curve_points: int = 6  # ... at this many evenly spaced steps
    conditions: tuple[str, ...] = ()  # optional conditions: self-instruct, proxy (study.conditions)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)  # the proxy condition: alpha, group, M
    parquet: bool | None = None  # Parquet copies of runs.csv and the records (null: if pyarrow is installed)
    report_to: tuple[str, ...] = ()  # experiment trackers per job: tensorboard, mlflow, wandb (offline)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # local processes or Slurm

    @property
    def tuned_format(self) -> str:
        """The format tuned models are read in: with eval_format "trained", the one whose prompt is
        the training prompt up to the response (probe.formats.trained_format: `qa` for the plain
        template without options, `sft-vicuna-options` for the paper's ...), else eval_format."""
        if self.eval_format != TRAINED_ALIAS:
            return self.eval_format
        return trained_format(self.render.template, self.render.show_options)
