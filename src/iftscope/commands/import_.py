"""`iftscope import`: probe records scored elsewhere, as probe folders that `iftscope intervene`
and the analysis read: lm-evaluation-harness samples of an exported task folder (`lm-eval`), or
the output of Ren et al.'s official probe code (`paper-code`). docs/lm-eval.md."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from iftscope.commands.flags import HelpFormatter
from iftscope.probe.knowledge import KNOWN_RULES


def import_lm_eval(args: argparse.Namespace) -> int:
    from iftscope.probe.lmeval import records_from_samples
    from iftscope.probe.lmeval_io import read_samples, sample_files, write_probe_folder
    from iftscope.probe.runner import format_summary

    files = sample_files(args.samples)
    imported = records_from_samples(read_samples(files))
    if not imported:
        raise ValueError(f"{', '.join(map(str, files))}: no samples")
    for name, got in imported.items():
        extra = {
            "format": got.format.id, "format_about": got.format.about, "config": asdict(got.config),
            "backend": "lm-eval", "imported_from": [str(f) for f in files],
        }  # fmt: skip
        summary = write_probe_folder(got.records, got.questions, args.out / name, extra)
        print(f"[{name}] " + format_summary(summary).replace("\n", f"\n[{name}] "))
    print(f"wrote {args.out}/<set>/: records.jsonl, summary.json, coverage.md for {', '.join(imported)}")
    return 0


def import_paper_code(args: argparse.Namespace) -> int:
    from iftscope.probe.lmeval_io import write_probe_folder
    from iftscope.probe.official import read_official
    from iftscope.probe.runner import format_summary

    for path in args.files:
        questions, records, cfg = read_official(
            path, args.known_rule, args.known_threshold, args.domain, args.shots
        )
        extra = {
            "format": records[0].format, "config": asdict(cfg), "backend": "paper-code",
            "imported_from": [str(path)],
        }  # fmt: skip
        out = args.out / path.stem if len(args.files) > 1 else args.out
        summary = write_probe_folder(records, questions, out, extra)
        print(format_summary(summary))
        print(f"wrote {out}/: records.jsonl, summary.json, coverage.md")
    return 0


def register(sub) -> None:
    i = sub.add_parser("import", help="probe records scored elsewhere (lm-eval samples, the paper's code)")
    isub = i.add_subparsers(dest="data_command", required=True)
    p = isub.add_parser(
        "lm-eval",
        help="lm-eval --log_samples output of an exported task folder -> probe folders",
        description="Read lm-evaluation-harness samples (--log_samples files, or folders holding "
        "samples_*.jsonl) of tasks written by `iftscope export lm-eval`, and write one probe folder per "
        "question set (OUT/<set>/records.jsonl, summary.json, coverage): each view's option "
        "distribution is the softmax of the logged log-likelihoods (divided by the continuation's "
        "length under normalise char), put back in the original option order and averaged over the "
        "views as `iftscope probe` does, with the exported probe settings.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("samples", nargs="+", type=Path, help="samples_*.jsonl files, or folders holding them")
    p.add_argument("--out", required=True, type=Path, help="output folder (one probe folder per set)")
    p.set_defaults(func=import_lm_eval)
    c = isub.add_parser(
        "paper-code",
        help="the official code's probe output (probs, pred, correct ...) -> a probe folder",
        description="Read the JSONL written by Ren et al.'s official probe code (eval/my_domain_eval.py: "
        "each question's fields plus `probs` over its options, `pred`, `correct`, `golden_prob`, "
        "`pred_prob`) and write a probe folder (records.jsonl, summary.json, coverage) that `iftscope "
        "intervene` reads to rebuild its groups. Its code saved only the option distribution: the "
        "probability mass on the options is unknown (NaN), so the `generative` known rule is refused.",
        formatter_class=HelpFormatter,
    )
    c.add_argument("files", nargs="+", type=Path, help="the official code's output JSONL files")
    c.add_argument(
        "--out", required=True, type=Path, help="output folder (one subfolder per file if several)"
    )
    c.add_argument(
        "--known-rule",
        default="confident",
        choices=sorted(k for k in KNOWN_RULES if k != "generative"),
        help="when a question counts as known (the paper: correct and confident)",
    )
    c.add_argument("--known-threshold", type=float, default=0.5, help="the rule's threshold")
    c.add_argument(
        "--shots", type=int, default=5, help="the code's --shot, recorded in the config (the paper: 5)"
    )
    c.add_argument("--domain", help="the questions' domain (default: the file's folder name)")
    c.set_defaults(func=import_paper_code)
