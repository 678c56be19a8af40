from datetime import datetime

from pydantic import MISSING, BaseModel, ConfigDict, Field

from shared.db import TaskDescription, TaskRequestBody, TaskTitle


class UpdateTaskRequest(TaskRequestBody):
    """Any of the task's `title`, `description` and `completed`: an omitted field keeps its
    value, `description: null` clears the description, and `{}` changes nothing. The server's
    fields are ignored, so the task received may be sent back with its changes."""

    # MISSING tells an omitted field from a null one: only the fields sent are written.
    title: TaskTitle | MISSING = Field(default=MISSING, description="Omit to keep the title.")
    description: TaskDescription | MISSING | None = Field(
        default=MISSING, description="`null` clears it; omit to keep it."
    )
    completed: bool | MISSING = Field(default=MISSING, description="Omit to keep the state.")

    def changes(self) -> dict[str, object]:
        """Only the fields the client sent: an omitted one is left as it is."""
        return self.model_dump()


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
