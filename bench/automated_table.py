"""The automated recipe's figures from a finished run folder: both base models' memorisation, the
rows (m and M untuned, H, I, S, self-instruct, large-H, proxy-H) with 95% CIs over seeds, the declared
contrasts, the self-instruct make-up. Usage: python bench/automated_table.py runs/automated"""

import json
import sys

run = sys.argv[1]
s = json.load(open(f"{run}/analysis/summary.json"))
w = json.load(open(f"{run}/world/summary.json"))
wl = json.load(open(f"{run}/world/large/summary.json"))
print(
    "world: m params",
    w["pretrain"]["parameters"],
    "known recall",
    round(w["memorisation"]["known"], 3),
    "unknown",
    round(w["memorisation"]["unknown"], 3),
    "pretrain s",
    w["pretrain"]["seconds"],
)
print(
    "world: M params",
    wl["pretrain"]["parameters"],
    "known recall",
    round(wl["memorisation"]["known"], 3),
    "unknown",
    round(wl["memorisation"]["unknown"], 3),
    "pretrain s",
    wl["pretrain"]["seconds"],
)
sets = ["known-heldout", "unknown", "heldout-attribute"]


def cell(c):
    a = c["accuracy"]
    ci = a.get("ci")
    return f"{a['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


print("| row | " + " | ".join(sets) + " | spearman (known-heldout) | gen acc |")
print("| --- |" + " --- |" * (len(sets) + 2))
print(
    "| m untuned (base) | "
    + " | ".join(f"{s['table']['base'][x]['accuracy']['mean']:.3f}" for x in sets)
    + " | | |"
)
print(
    "| M untuned | "
    + " | ".join(f"{s['conditions']['large_base'][x]['accuracy']:.3f}" for x in sets)
    + " | | |"
)
for g in ["H", "I", "S", "self-instruct", "large-H", "proxy-H"]:
    t = s["table"][f"{g}/answer"]
    sp = t["known-heldout"].get("spearman")
    ga = t["known-heldout"].get("gen_accuracy")
    print(
        f"| {g} | " + " | ".join(cell(t[x]) for x in sets) + f" | {sp:.3f} | {ga:.3f} |"
        if sp is not None and ga is not None
        else f"| {g} | " + " | ".join(cell(t[x]) for x in sets) + " | | |"
    )
print()
for t in s["paired_tests"]:
    if t["role"] in ("primary", "secondary"):
        lo, hi = t["ci_low"], t["ci_high"]
        head = f"{t['a']} vs {t['b']} ({t['set']}): {t['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        print(f"{head} p={t['p_value']:.3g} p_holm={t.get('p_holm')}")
print()
print("verdict:", s["verdict"])
print("self-instruct make-up:", json.dumps(s["conditions"]["self_instruct"]["mean"]))
print(
    "memorisation:",
    {
        k: {m: v[m]["mean"] for m in ("target_accuracy", "gold_accuracy", "retention_accuracy") if m in v}
        for k, v in s["memorisation"].items()
    },
)
print("stage_seconds:", s["stage_seconds"])
