"""What the example clients share: run a trio main and report any failure in one line."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio


def one_line(error: BaseException) -> str:
    """``Type: message`` for the error that matters (trio wraps it in exception groups)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = next(
            (e for e in error.exceptions if not isinstance(e, trio.Cancelled)),
            error.exceptions[0],
        )
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_client(prog: str, main: Callable[..., Awaitable[Any]], *args: Any) -> int:
    """Run ``main(*args)``; the exit status, with one line on stderr if it failed."""
    try:
        trio.run(main, *args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a client prints one line, never a traceback
        print(f"{prog}: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0
