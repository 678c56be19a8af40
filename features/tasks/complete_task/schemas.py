from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CompleteTaskRequest(BaseModel):
    """Optional. `{"completed": true|false}` sets the state, so a retry is harmless;
    no body (or no `completed`) toggles it."""

    model_config = ConfigDict(extra="forbid", strict=True)

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
