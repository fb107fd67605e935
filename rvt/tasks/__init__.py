"""Sequence tasks with dependency-distance labels; build them with :func:`make_task`."""

from rvt.tasks.base import Batch, Task
from rvt.tasks.registry import TASKS, make_task, register_task, task_fields

__all__ = ["TASKS", "Batch", "Task", "make_task", "register_task", "task_fields"]
