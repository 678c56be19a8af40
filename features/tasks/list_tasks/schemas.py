from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.db import StorableText

# One page holds every task of any realistic list, for clients that never follow `Link`; those
# that page still get `Link` and `X-Total-Count`.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE

# The pattern documents StorableText's refusal of NUL (a 400) for clients.
SearchText = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": r"^[^\x00]*$"}),
    StorableText,
]


class ListTasksQuery(BaseModel):
    """What to list, in which order, and which page of it."""

    status: Literal["all", "pending", "completed"] = Field(
        default="all", description="Only pending (not completed) or only completed tasks."
    )
    sort: Literal["created", "updated", "title"] = Field(
        default="created", description="The order: by creation, last change, or title."
    )
    order: Literal["asc", "desc"] = Field(default="desc", description="Ascending or descending.")
    q: SearchText | None = Field(
        default=None,
        description="Case-insensitive text to find in the title or description; `%` and `_` "
        "are plain characters.",
    )
    limit: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description="Tasks per page: by default every task of any realistic list, so a client "
        "that does not page sees them all; more than that continue at the `Link` header's "
        "`next` URL, and `X-Total-Count` says how many there are.",
    )
    offset: int = Field(
        default=0,
        ge=0,
        le=2**62,
        description="Tasks to skip, to jump to a page. The database still reads the tasks it "
        "skips, so a deep offset costs more than the `Link` header's cursor.",
    )
    cursor: str | None = Field(
        default=None,
        max_length=1024,
        description="Opaque: the `next` or `prev` page as given in the `Link` header. Paging by "
        "cursor neither repeats nor skips a task while tasks are added or removed, and a page "
        "deep in the list costs what the first one does. Any other value, or a cursor together "
        "with `offset`, is a 400.",
    )


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
