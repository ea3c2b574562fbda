"""Read a bench/gpu_check.py output folder: one merged JSON for bench/results/ and the markdown table
docs/gpu-check.md shows, so the figures in the docs are copied from a run, never typed.

    python bench/gpu_check_report.py OUT [--json bench/results/gpu_check_h200.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def merged(folder: Path) -> dict:
    """{stage file stem: its record} for every stage JSON in the folder, in stage order."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("[0-9]_*.json"))}


def _f(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def table(run: dict) -> str:
    """The headline figures as markdown rows (what a stage did not write shows as its status)."""
    env = run.get("0_environment", {})
    rows = [
        "| figure | value |",
        "| --- | --- |",
        f"| machine | {env.get('gpu') or 'CPU'}; {env.get('machine')}; commit {env.get('commit')} |",
        f"| matmul peak ({_f(env.get('matmul_peak', {}).get('dtype'))}) | "
        f"{_f(env.get('matmul_peak', {}).get('tflops'))} TFLOP/s |",
    ]
    for stem, record in run.items():
        if stem == "0_environment":
            continue
        status = record.get("status", "?")
        head = f"| {stem}: status, seconds, peak memory | {status[:120]}; {_f(record.get('seconds'))} s; "
        rows.append(head + f"{_f(record.get('peak_gpu_gib', record.get('peak_rss_gib_process')))} GiB |")
        rows += [f"| {stem}: {k} | {v} |" for k, v in _figures(stem, record)]
    return "\n".join(rows)


def _figures(stem: str, r: dict) -> list[tuple[str, str]]:
    if stem == "1_correctness":
        keys = (
            "max_diff_cached_vs_plain",
            "max_diff_cached_vs_single",
            "tie_rate_native_logits",
            "tie_rate_scored",
            "tie_rate_fp32",
            "argmax_agreement_vs_fp32_untied",
            "generation_identical",
        )
        return [(k, _f(r.get(k))) for k in keys]
    if stem == "2_probe":
        return [
            (
                f"batch {x['batch']}, prefix reuse {'on' if x['prefix_reuse'] else 'off'}",
                f"{_f(x['questions_per_second'])} q/s, {_f(x['tflops'])} TFLOP/s, "
                f"{_f(x['fraction_of_matmul_peak'])} of peak",
            )
            for x in r.get("runs", [])
        ]
    if stem == "3_lm_eval":
        keys = ("time_ratio_lm_eval_over_ours", "argmax_agreement", "max_abs_loglik_diff")
        return [(k, _f(r.get(k))) for k in keys]
    if stem == "4_sft":
        large = r.get("large_steady", {})
        memory = r.get("large_peak_gpu_gib", r.get("large_peak_rss_gib_process"))
        return [
            ("large LoRA steady tokens/s", _f(large.get("tokens_per_second"))),
            (
                "large LoRA TFLOP/s, fraction of peak",
                f"{_f(large.get('tflops'))}, {_f(large.get('fraction_of_matmul_peak'))}",
            ),
            ("large LoRA peak memory (GiB)", _f(memory)),
            (
                "tokens/s ratio iftscope / TRL (small)",
                _f(r.get("tokens_per_second_ratio_ours_over_trl", r.get("trl"))),
            ),
        ]
    if stem == "5_full_step":
        return [
            ("fraction changed: fp32 step", _f(r.get("fp32_step", {}).get("fraction_changed"))),
            (
                "fraction changed: half step (master weights)",
                _f(r.get("half_step", {}).get("fraction_changed")),
            ),
            ("fraction changed: as saved", _f(r.get("saved_fraction_changed"))),
            ("update difference vs fp32 (relative norm)", _f(r.get("update_relative_difference_vs_fp32"))),
        ]
    if stem == "7_multi_adapter":
        one, six = r.get("one_at_a_time", {}), r.get("six_per_pass", {})
        memory = ("peak_gpu_gib", "peak_rss_gib_process")
        return [
            (
                f"{label} tokens/s, fraction of peak, peak memory",
                f"{_f(x.get('tokens_per_second'))}, {_f(x.get('fraction_of_matmul_peak'))}, "
                f"{_f(next((x[k] for k in memory if k in x), None))} GiB",
            )
            for label, x in (("one adapter at a time:", one), ("six adapters per pass:", six))
        ] + [
            ("speedup, six per pass", _f(r.get("speedup_six_per_pass"))),
            ("max adapter difference", _f(r.get("max_abs_adapter_difference"))),
        ]
    if stem == "6_smoke":
        return [
            (k, f"exit {v.get('returncode')}, {_f(v.get('seconds'))} s")
            for k, v in r.items()
            if k in ("lora", "full")
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="the --out folder of bench/gpu_check.py")
    ap.add_argument("--json", type=Path, help="write every stage's record, merged, here")
    args = ap.parse_args(argv)
    run = merged(args.folder)
    if not run:
        print(f"{args.folder}: no stage files", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(run, indent=2) + "\n")
    print(table(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
