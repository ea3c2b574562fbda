"""The default micro-world meets its targets (minutes on 2 cores: run with `pytest -m slow`)."""

import pytest

from iftscope.world import build_world


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_world_memorises_known_and_not_unknown(tmp_path, seed):
    from dataclasses import replace

    from iftscope.world import WorldStageConfig

    cfg = WorldStageConfig()
    cfg = replace(cfg, world=replace(cfg.world, seed=seed))
    summary = build_world(tmp_path / "world", cfg, progress=False)
    mem = summary["memorisation"]
    assert mem["known"] >= 0.85, mem
    assert abs(mem["unknown"] - summary["chance"]) <= 0.05, mem
