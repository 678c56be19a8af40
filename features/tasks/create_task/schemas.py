from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.db import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, StorableText


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CreateTaskRequest(BaseModel):
    """A new task. `id`, `user_id` and the timestamps are the server's to set."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Annotated[
        str,
        Field(min_length=1, max_length=TITLE_MAX_LENGTH),
        StorableText,
        AfterValidator(_not_blank),
    ]
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX_LENGTH), StorableText] | None = (
        None
    )
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
