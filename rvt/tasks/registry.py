"""The task registry: config names to task classes, in one plain dict.

Adding a task is one file and one line here (or ``register_task`` from outside the package).
Experiments build tasks only through :func:`make_task`, so a bad name or setting fails with a
:class:`ConfigError` that names it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rvt.errors import ConfigError
from rvt.tasks.base import Task
from rvt.tasks.copy import CopyMemory, SelectiveCopy, VariableCopy
from rvt.tasks.formal import ChomskyTask, InductionHeads
from rvt.tasks.recall import AssociativeRecall

TASKS: dict[str, type[Task]] = {
    "copy_memory": CopyMemory,
    "variable_copy": VariableCopy,
    "selective_copy": SelectiveCopy,
    "associative_recall": AssociativeRecall,
    "induction_heads": InductionHeads,
    "chomsky": ChomskyTask,
}


def register_task(name: str, cls: type[Task]) -> None:
    """Add a task class under ``name``; refuses to replace one already registered."""
    if name in TASKS:
        raise ValueError(f"task name {name!r} is already registered to {TASKS[name].__name__}")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{cls!r} is not a subclass of rvt.tasks.base.Task")
    TASKS[name] = cls


def _task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise ConfigError(f"task.name: unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def task_fields(name: str) -> dict[str, Any]:
    """The settings of task ``name`` and their defaults, in declaration order."""
    return {f.name: f.default for f in dataclasses.fields(_task_class(name)) if f.init}


def make_task(name: str, **sizes: Any) -> Task:
    """Build task ``name`` from its settings; validation errors propagate as ConfigError."""
    known = task_fields(name)
    for field in sizes:
        if field not in known:
            raise ConfigError(f"task.{field}: unknown setting for {name}; known: {', '.join(known)}")
    return TASKS[name](**sizes)
