"""The database, one file for each thing it holds:

- `tables`: the tables (`users`, `tasks`, `idempotency_keys`) and the UTC timestamps they keep;
- `fields`: what a task's fields accept and what a task request body may hold;
- `urls`: the database URL (PostgreSQL's only) and what the connection goes through;
- `database`: psycopg's connection pool (`Database`) and the session a request runs its
  statements in (`DbSession`), which commits them, and logs audit events once they are;
- `statements`: a query written as a SQLAlchemy statement, compiled once (`Statement`), and
  the row a task query returns (`StoredTask`);
- `embedded`: the embedded PostgreSQL that serves when `DATABASE_URL` is unset;
- `versions`: a task's version as its ETag, and the `If-Match` / `If-None-Match` headers;
- `paths`: the path parameters the task routes share (`TaskId`);
- `responses`: a response body made once, straight to JSON bytes, from rows (`json_response`);
- `errors`: the named errors a query can raise (`TaskNotFoundError`, `VersionMismatchError`),
  each with its status, problem text and OpenAPI response, and which one a write that matched
  nothing means;
- `upkeep`: what the service does by itself (purging expired idempotency keys);
- `state`: what the application holds for its lifetime (`AppState`, read with `app_state`).

Slices import from `shared.db` itself; the files are how the package is kept, not its API.
"""

from shared.db.database import (
    Database,
    DatabaseNotReadyError,
    DatabaseSession,
    DbSession,
    SchemaNotReadyError,
    StatementError,
    log_after_commit,
)
from shared.db.errors import (
    ProblemError,
    TaskNotFoundError,
    VersionMismatchError,
    error_responses,
    not_found_or_changed,
)
from shared.db.fields import (
    SERVER_SET_FIELDS,
    TASK_FIELDS,
    StorableText,
    TaskDescription,
    TaskRequestBody,
    TaskTitle,
    is_storable_text,
    unknown_field_reason,
)
from shared.db.paths import TaskId
from shared.db.responses import json_response
from shared.db.state import AppState, app_state
from shared.db.statements import Statement, StoredTask, at_expected_versions, task_of_user
from shared.db.tables import (
    DESCRIPTION_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    USER_ID_MAX_LENGTH,
    IdempotencyKey,
    Task,
    User,
    UserTaskCount,
    UTCDateTime,
    utc_now,
)
from shared.db.upkeep import purge_expired_idempotency_keys
from shared.db.urls import (
    ConnectionPlan,
    DatabaseUrlError,
    async_database_url,
    configured_database_url,
    connection_plan,
    libpq_url,
    sync_database_url,
)
from shared.db.versions import FIRST_VERSION, IfMatch, IfNoneMatch, entity_tag, versions_in

__all__ = [
    "DESCRIPTION_MAX_LENGTH",
    "FIRST_VERSION",
    "SERVER_SET_FIELDS",
    "TASK_FIELDS",
    "TITLE_MAX_LENGTH",
    "USER_ID_MAX_LENGTH",
    "AppState",
    "ConnectionPlan",
    "Database",
    "DatabaseNotReadyError",
    "DatabaseSession",
    "DatabaseUrlError",
    "DbSession",
    "IdempotencyKey",
    "IfMatch",
    "IfNoneMatch",
    "ProblemError",
    "SchemaNotReadyError",
    "Statement",
    "StatementError",
    "StorableText",
    "StoredTask",
    "Task",
    "TaskDescription",
    "TaskId",
    "TaskNotFoundError",
    "TaskRequestBody",
    "TaskTitle",
    "UTCDateTime",
    "User",
    "UserTaskCount",
    "VersionMismatchError",
    "app_state",
    "async_database_url",
    "at_expected_versions",
    "configured_database_url",
    "connection_plan",
    "entity_tag",
    "error_responses",
    "is_storable_text",
    "json_response",
    "libpq_url",
    "log_after_commit",
    "not_found_or_changed",
    "purge_expired_idempotency_keys",
    "sync_database_url",
    "task_of_user",
    "unknown_field_reason",
    "utc_now",
    "versions_in",
]
