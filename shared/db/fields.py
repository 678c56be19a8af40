"""What a task's fields accept and what a task request body may hold: one rule for every slice."""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator
from pydantic import Field as PydanticField

from shared.db.tables import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH


def _reject_unstorable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8:
    # both would fail inside the database as a 500, so they are refused at the edge.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


StorableText = AfterValidator(_reject_unstorable_text)
"""Marks a request string as text the database can store (`Annotated[str, StorableText]`)."""


def _reject_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# What the tasks table accepts, for request models: one rule, whichever slice writes it. The
# patterns only document the validators (no NUL; a title not blank), so clients know those are
# a 400; they are not checked a second time.
TaskTitle = Annotated[
    str,
    PydanticField(
        min_length=1,
        max_length=TITLE_MAX_LENGTH,
        json_schema_extra={"pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"},
    ),
    StorableText,
    AfterValidator(_reject_blank),
]
TaskDescription = Annotated[
    str,
    PydanticField(max_length=DESCRIPTION_MAX_LENGTH, json_schema_extra={"pattern": r"^[^\x00]*$"}),
    StorableText,
]


# What a task's request body may hold besides its own fields: one rule for every slice that
# takes one (create, update, complete). Google's AIP-203 is the anchor: a field the server sets
# is ignored when a client sends it, so a frontend may send back the task it received; and
# nothing a client sends is silently lost, so an unknown field is refused, unless it is `null`,
# which says there is no value to lose (forms send `due_date: null` for a field they have but
# this API does not).
SERVER_SET_FIELDS = frozenset({"id", "user_id", "created_at", "updated_at"})
"""Fields of a task the server sets. The owner is always the token's subject, so a `user_id` is
ignored whatever it names: the path already had to name that subject (or the request is a 403),
and no body can move a task to another person's list."""

TASK_FIELDS = SERVER_SET_FIELDS | {"title", "description", "completed"}

_IGNORED = (
    "Set by the server: ignored when sent, whatever its value, so a task received may be sent "
    "back as it is."
)
_UNKNOWN = (
    "Any other field must be null (then it is ignored); a field this API does not have, "
    "with a value, is a 400 that names it, so no value sent is silently dropped."
)


def unknown_field_reason(name: str) -> str:
    """Why an unknown field with a value was refused, for the 400's `errors` and `detail`."""
    if name in TASK_FIELDS:
        return "not a field of this request"
    return "not a field of this API"


def _document_the_rule(schema: dict[str, Any]) -> None:
    # The document says what the app accepts: the server's fields with any value, other fields
    # only as null. Generated clients and Schemathesis read exactly this. Said with JSON Schema
    # 2020-12's `unevaluatedProperties` (OpenAPI 3.1's dialect), not `additionalProperties`:
    # TypeScript generators turn the latter into an index signature of `null` that every named
    # field then fails to satisfy, so a generated client could not even send a title.
    properties = schema.setdefault("properties", {})
    for name in sorted(SERVER_SET_FIELDS):
        properties.setdefault(name, {"description": _IGNORED})
    schema.pop("additionalProperties", None)
    schema["unevaluatedProperties"] = {"type": "null", "description": _UNKNOWN}


class TaskRequestBody(BaseModel):
    """The base of every task request body: strict types, the server's fields ignored, unknown
    fields ignored when null and refused otherwise."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_document_the_rule)

    @model_validator(mode="before")
    @classmethod
    def _ignore_what_loses_nothing(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # not an object: the model's own validation refuses it
        own = cls.model_fields
        return {
            name: value
            for name, value in data.items()
            if name in own or (name not in SERVER_SET_FIELDS and value is not None)
        }


def is_storable_text(value: str) -> bool:
    try:
        _reject_unstorable_text(value)
    except ValueError:
        return False
    return True
