from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.db import TaskDescription, TaskRequestBody, TaskTitle


class CreateTaskRequest(TaskRequestBody):
    """A new task. `id`, `user_id` and the timestamps are the server's to set: sent, they are
    ignored (the owner is always the signed-in person); other fields must be null or absent."""

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
