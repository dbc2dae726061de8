"""Counting live trio tasks, to show that a system leaves none behind."""

from __future__ import annotations

import trio


def count_tasks() -> int:
    """Every task in the current run, from the root down."""

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return count(root)
