from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.db import TaskDescription, TaskTitle


class UpdateTaskRequest(BaseModel):
    """The task's new content: `title` is required; an omitted field keeps its value, and
    `description: null` clears the description."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: TaskTitle
    description: TaskDescription | None = None
    # No default in the schema: an omitted `completed` keeps the task's state, it is not False.
    completed: bool = Field(
        default=False,
        description="Omit to keep the current state.",
        json_schema_extra=lambda schema: schema.pop("default", None),
    )

    def changes(self) -> dict[str, object]:
        """Only the fields the client sent: an omitted one is left as it is."""
        return self.model_dump(include=self.model_fields_set)


class UpdateTaskResponse(BaseModel):
    """The task as stored after the change."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
