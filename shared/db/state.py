"""What the application holds for its lifetime, as one typed object rather than attributes set on
Starlette's `app.state` and read back by name: a type checker sees every read and every write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.applications import Starlette

if TYPE_CHECKING:
    # Names for the type checker only: the auth and drain modules import this package.
    from shared.auth import KnownUsers
    from shared.db.database import Database
    from shared.drain import Drain


@dataclass
class AppState:
    """Set once by `create_app`; `schema_ready` alone changes, when the start-up migration ends."""

    database: Database
    # Users whose `users` row this process knows to be current (shared/auth.py).
    known_users: KnownUsers
    # The migration this code expects the database to be at.
    schema_revision: str
    # Until the start-up migration has run, requests that need the database get a 503.
    schema_ready: bool
    drain: Drain

    def install(self, app: Starlette) -> None:
        app.state.app_state = self


def app_state(app: Starlette) -> AppState:
    """The application's state (`request.app` for a request's)."""
    state: AppState = app.state.app_state
    return state
