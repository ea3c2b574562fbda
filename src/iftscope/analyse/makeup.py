"""What the groups are made of, over the study's seeds: composition (never-pretrained share,
confidence categories, base-confidence quartiles) and how well H and I are matched in the base
model's confidence (intervene.matching), from each seed's groups summary.

Means over seeds, per group; a computed note when the micro-world's I is mostly people the base
model never saw in pretraining (then I teaches new people's facts, close to unknown-gold, rather
than facts that contradict what the model knows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MOSTLY = 0.5  # a never-pretrained share above this gets the note


def _mean(values: Sequence[Any]) -> Any:
    """Mean of numbers, element-wise of equal-length lists, key-wise of dicts (a missing key = 0
    for shares); None when there is nothing to average."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    if isinstance(values[0], dict):
        keys = sorted({k for v in values for k in v})
        return {k: round(float(np.mean([v.get(k, 0.0) for v in values])), 4) for k in keys}
    if isinstance(values[0], list):
        return [round(float(x), 4) for x in np.mean(np.array(values, float), axis=0)]
    return round(float(np.mean(values)), 4)


def group_makeup(groups_by_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """`composition` (group -> mean over seeds of its make-up and size, with the seeds), `matching` (H vs
    I: KS distance and quartiles before/after, mean over seeds) and `composition_notes` (computed
    sentences), from each seed's groups/s<seed>/summary.json. Empty when no seed has them."""
    seeds = sorted(groups_by_seed)
    if not seeds:
        return {}
    comp: dict[str, Any] = {}
    for name in sorted({g for s in seeds for g in groups_by_seed[s]["groups"]}):
        found = [groups_by_seed[s]["groups"].get(name) or {} for s in seeds]
        parts = [{**g["composition"], "size": g["size"]} for g in found if g.get("composition")]
        if parts:
            keys = sorted({k for p in parts for k in p})
            comp[name] = {k: _mean([p.get(k) for p in parts]) for k in keys} | {"seeds": len(parts)}
    out: dict[str, Any] = {"composition": comp, "composition_notes": notes(comp)}
    matching = [groups_by_seed[s].get("matching") for s in seeds]
    matching = [m for m in matching if m]
    if matching:
        out["matching"] = {
            "matched": matching[0]["matched"],
            **{k: _mean([m[k] for m in matching]) for k in ("ks_before", "ks_after")},
            **{k: {g: _mean([m[k][g] for m in matching]) for g in ("H", "I")}
               for k in ("quartiles_before", "quartiles_after")},
        }  # fmt: skip
    return out


def notes(comp: Mapping[str, Any]) -> list[str]:
    """Sentences computed from the composition: what I (and S, its items) really holds."""
    out = []
    share = comp.get("I", {}).get("never_pretrained_share")
    if share is not None and share > MOSTLY:
        out.append(
            f"I is {share:.0%} people the base model never saw in pretraining: on this world it mostly "
            "teaches facts about unseen people (close to unknown-gold), not facts that contradict what "
            "the model knows; S and the mixtures share its items."
        )
    return out
