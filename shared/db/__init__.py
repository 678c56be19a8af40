"""The database, one file for each thing it holds:

- `tables`: the tables (`users`, `tasks`, `idempotency_keys`) and the UTC timestamps they keep;
- `fields`: what a task's fields accept and what a task request body may hold;
- `engine`: the database URL (PostgreSQL's only), what the connection goes through, the
  statement timeout;
- `embedded`: the embedded PostgreSQL that serves when `DATABASE_URL` is unset;
- `session`: the per-request session that owns the transaction (`DbSession`), and the audit
  events it logs once the transaction has committed;
- `versions`: a task's version as its ETag, and the `If-Match` / `If-None-Match` headers;
- `paths`: the path parameters the task routes share (`TaskId`);
- `responses`: a response body made once, straight to JSON bytes, from rows (`json_response`);
- `errors`: the named errors a query can raise (`TaskNotFoundError`, `VersionMismatchError`),
  each with its status, problem text and OpenAPI response, and which one a write that matched
  nothing means;
- `state`: what the application holds for its lifetime (`AppState`, read with `app_state`).

Slices import from `shared.db` itself; the files are how the package is kept, not its API.
"""

from shared.db.engine import (
    ConnectionPlan,
    DatabaseUrlError,
    async_database_url,
    configured_database_url,
    connection_plan,
    create_engine,
    reads_need_no_transaction,
    sync_database_url,
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
from shared.db.session import (
    DatabaseNotReadyError,
    DbSession,
    SchemaNotReadyError,
    create_session_factory,
    log_after_commit,
)
from shared.db.state import AppState, app_state
from shared.db.tables import (
    DESCRIPTION_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    USER_ID_MAX_LENGTH,
    IdempotencyKey,
    Task,
    User,
    UserTaskCount,
    UTCDateTime,
    purge_expired_idempotency_keys,
    utc_now,
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
    "DatabaseNotReadyError",
    "DatabaseUrlError",
    "DbSession",
    "IdempotencyKey",
    "IfMatch",
    "IfNoneMatch",
    "ProblemError",
    "SchemaNotReadyError",
    "StorableText",
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
    "configured_database_url",
    "connection_plan",
    "create_engine",
    "create_session_factory",
    "entity_tag",
    "error_responses",
    "is_storable_text",
    "json_response",
    "log_after_commit",
    "not_found_or_changed",
    "purge_expired_idempotency_keys",
    "reads_need_no_transaction",
    "sync_database_url",
    "unknown_field_reason",
    "utc_now",
    "versions_in",
]
