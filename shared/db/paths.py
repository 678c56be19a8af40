"""The path parameters that the task routes share."""

from typing import Annotated

from fastapi import Path

# `tasks.id` is a BIGINT: a larger id is a 400, not a database error.
TaskId = Annotated[int, Path(gt=0, le=2**63 - 1, description="The task's id.")]
