from datetime import datetime

from pydantic import BaseModel, ConfigDict


class GetTaskResponse(BaseModel):
    """The task as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
