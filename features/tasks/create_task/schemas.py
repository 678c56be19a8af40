from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.db import TaskDescription, TaskTitle


class CreateTaskRequest(BaseModel):
    """A new task. `id`, `user_id` and the timestamps are the server's to set."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: TaskTitle
    description: TaskDescription | None = None
    completed: bool = False


class CreateTaskResponse(BaseModel):
    """The task as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
