from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.db import TaskRequestBody


class CompleteTaskRequest(TaskRequestBody):
    """Optional. `{"completed": true|false}` sets the state, so a retry is harmless;
    no body (or `{}`, or `completed: null`) toggles it. The server's fields are ignored; `title`
    and `description` with a value are a 400 (PUT changes them)."""

    completed: bool | None = Field(default=None, description="The state to set; omit to toggle.")


class CompleteTaskResponse(BaseModel):
    """The task as stored after the change."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
