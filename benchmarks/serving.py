"""A benchmark's far side: the same benchmark module started in another OS process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["served_port"]


@asynccontextmanager
async def served_port(module: str, *args: str) -> AsyncIterator[int]:
    """Run ``python -m module *args`` until the block ends; yield the port it prints first
    (a line ``<word> <port>``), then kill it."""
    command = [sys.executable, "-m", module, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = await trio.to_thread.run_sync(process.stdout.readline)
        yield int(line.split()[1])
    finally:
        process.kill()
        process.wait()
