from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ListTasksItem(BaseModel):
    """One task of the list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
