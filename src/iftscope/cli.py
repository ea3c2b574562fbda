"""The `iftscope` command: one subcommand per stage (commands/), each calling the stage layer.

User errors (bad files, values, recipes) end in one clear line and exit code 2, Ctrl-C in one
line and exit code 130, SIGTERM (a scheduler's preemption, `kill`) likewise with 143, after every
`finally` has run (a rerun resumes); `--debug` shows the traceback instead. Anything else is a
bug: its traceback is shown, with a line asking to report it (exit 1).
"""

from __future__ import annotations

import argparse
import errno
import sys

from iftscope.version import __version__

# modules under iftscope.commands, each registering its subcommands (evaluate also registers analyse)
COMMAND_MODULES = (
    "run", "world", "data", "probe", "intervene", "train", "evaluate", "curate", "verify", "export", "import_"
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="iftscope",
        description="Does instruction fine-tuning teach your model new knowledge, or only make it "
        "express what it already knows? (Ren et al., ACL 2024, and beyond)",
    )
    parser.add_argument("--version", action="version", version=f"iftscope {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"iftscope.commands.{name}").register(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from iftscope.data import DataValidationError
    from iftscope.runfolder import RunFolderBusy

    return (DataValidationError, RunFolderBusy, ValueError, FileNotFoundError, PermissionError, OSError)


def _message(e: BaseException) -> str:
    """The error's one line; a disk error that is not our own WriteError (a library's write) gets
    the same advice: what to fix, and that a rerun resumes."""
    from iftscope.runs import WriteError, advice

    if isinstance(e, OSError) and not isinstance(e, WriteError) and e.errno in _DISK_ERRNOS:
        return f"{e}. {advice(e)}"
    return str(e)


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds as from Ctrl-C (locks released, worker
    pools shut down, nothing half-written: every output is written atomically)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals go to the main thread
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    import os

    # our own bars say what is happening; transformers' and the hub's are noise. Said through the
    # environment (read when transformers loads) so that a quick command (run --check, verify)
    # never imports it. A library user's own setting is left alone.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    command = " ".join(x for x in (args.command, getattr(args, "data_command", None)) if x)
    try:
        return args.func(args)
    except _user_errors() as e:
        if args.debug:
            raise
        print(f"iftscope {command}: error: {_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        what, code = ("terminated (SIGTERM)", 143) if isinstance(e, Terminated) else ("interrupted", 130)
        print(f"iftscope {command}: {what}; run the same command again to resume", file=sys.stderr)
        return code
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            f"iftscope {command}: internal error (a bug in iftscope {__version__}, not in your input): "
            "please report it with the command and the traceback above",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
