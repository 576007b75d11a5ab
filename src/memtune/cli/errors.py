"""How the ``memtune`` command ends when something other than bad input stops it: a bug, an output that
cannot be written, Ctrl-C. None of them may look like success (0), drift (1) or bad input (2).

Exit codes: 70 internal error (a bug: one line on standard error; ``MEMTUNE_DEBUG=1`` adds the traceback);
74 standard output cannot be written (a full disk, an I/O error), with a message; 141 standard output was
closed by its reader (``memtune audit | head -1``), quietly, the status a shell reports for a process
killed by SIGPIPE; 130 interrupted (Ctrl-C), without worker tracebacks.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

EXIT_INTERNAL = 70
EXIT_OUTPUT = 74
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141
DEBUG_ENV = "MEMTUNE_DEBUG"
# An output that cannot be written for want of room or a working device: exit 74, not bad input.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _detach_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def bug_message(exc: BaseException) -> str:
    """One line: what broke, that it is a bug, and how to see the traceback."""
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
    return (
        f"internal error (a bug in memtune, not a problem with your input): {detail}; "
        f"run again with {DEBUG_ENV}=1 for the traceback and report it"
    )


def exit_code_for(exc: BaseException) -> int:
    """Report ``exc`` on standard error the way its class asks, and return the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        _stderr("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        _detach_stdout()
        return EXIT_PIPE
    if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS:
        _detach_stdout()
        _stderr(f"error: cannot write the output: {exc.strerror}")
        return EXIT_OUTPUT
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exception(exc)
    _stderr(f"error: {bug_message(exc)}")
    return EXIT_INTERNAL


# How typer and click end a command on purpose (an exit code, a usage error): not bugs.
_CONTROL = (typer.Exit, typer.Abort, TyperException)


class GuardedGroup(TyperGroup):
    """The command group whose sub-commands end with the exit codes above instead of a traceback (exit 1)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _CONTROL:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(exit_code_for(exc)) from None


class OutputConsole(Console):
    """A rich console whose broken pipe is an error like any other write's (rich itself exits 1, which
    reads as drift)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def flush_stdout() -> None:
    """The last flush of standard output, with the same exit codes when it fails."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        raise SystemExit(exit_code_for(exc) if isinstance(exc, OSError) else EXIT_OUTPUT) from None


def run_guarded(main: Any) -> NoReturn:
    """Run ``main`` (a click entry point in standalone mode) and leave with its code, flushing first."""
    try:
        main()
    except SystemExit as done:
        code = done.code
    except (Exception, KeyboardInterrupt) as exc:  # before or after the sub-command (parsing, imports)
        code = exit_code_for(exc)
    else:
        code = 0
    flush_stdout()
    raise SystemExit(code)
