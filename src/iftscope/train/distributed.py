"""Which multi-process set-ups the SFT loop supports, refused before any training step otherwise.

Supported: one process, or data parallelism over several (DDP on GPUs, gloo on CPU processes):
every process holds the whole model. FSDP and DeepSpeed are refused until the loop is correct
under them and tested: DeepSpeed wants `prepare` with a dataloader and an engine step per
micro-batch under gradient accumulation, FSDP a training-curve evaluation through the wrapped
module and a gradient clip over the wrapped parameters, and neither is exercised by the tests.
"""

from __future__ import annotations

from pathlib import Path

# accelerate's DistributedType values that mean "every process has the whole model"
SUPPORTED = (
    "NO", "MULTI_CPU", "MULTI_GPU", "MULTI_NPU", "MULTI_MLU", "MULTI_SDAA", "MULTI_MUSA", "MULTI_XPU",
    "MULTI_HPU", "MULTI_NEURON",
)  # fmt: skip
SUPPORTED_WORDS = "one process, or DDP over several (launch.processes > 1 without a config_file)"


def check_distributed_type(kind: str) -> None:
    """Raise ValueError naming what works when `kind` (an accelerate DistributedType or its value,
    e.g. "FSDP", "DEEPSPEED") is a set-up the SFT loop does not support."""
    value = getattr(kind, "value", kind)
    if str(value).upper() not in SUPPORTED:
        raise ValueError(
            f"training under {value} is not supported yet (sharded training is not tested here); "
            f"supported: {SUPPORTED_WORDS}"
        )


def check_distributed(acc) -> None:
    """Refuse an accelerate.Accelerator whose set-up the SFT loop does not support (see the module)."""
    check_distributed_type(acc.distributed_type)


def check_accelerate_config(path: str | Path) -> None:
    """Refuse an `accelerate config` file (YAML or JSON) that asks for FSDP, DeepSpeed or another
    unsupported set-up, before any process is launched."""
    import yaml

    config = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not an accelerate config (a mapping)")
    kind = config.get("distributed_type", "NO")
    check_distributed_type("NO" if kind is False else str(kind))  # YAML 1.1 reads a bare NO as false
    for key, what in (("fsdp_config", "FSDP"), ("deepspeed_config", "DEEPSPEED")):
        if config.get(key):
            check_distributed_type(what)
