"""factory-boy factories for the tables; `bind` points them at the test's session."""

import uuid
from datetime import timedelta

# Imported from the modules that define them: the `factory` package re-exports these names
# without declaring them public, so a type checker reads them as private there.
from factory.alchemy import SQLAlchemyModelFactory
from factory.declarations import LazyAttribute, LazyFunction, SelfAttribute, Sequence, SubFactory
from factory.faker import Faker
from factory.helpers import build_batch
from sqlalchemy import insert
from sqlalchemy.orm import Session

from shared.db import IdempotencyKey, Task, User, utc_now


class UserFactory(SQLAlchemyModelFactory):
    # factory-boy's `Meta` is a bag of options its metaclass reads, not a subclass of the
    # parent's `Meta` (inheriting it would inherit `abstract = True`), so the override check
    # does not apply.
    class Meta:  # pyright: ignore[reportIncompatibleVariableOverride]
        model = User
        # Several tasks may name one owner by id: the second must find the first.
        sqlalchemy_get_or_create = ("id",)
        sqlalchemy_session_persistence = "commit"

    # Better Auth ids are random 32-character strings.
    id = LazyFunction(lambda: uuid.uuid4().hex)
    email = LazyAttribute(lambda user: f"{user.id[:8]}@example.com")
    name = Faker("name")
    created_at = LazyFunction(utc_now)


class TaskFactory(SQLAlchemyModelFactory):
    class Meta:  # pyright: ignore[reportIncompatibleVariableOverride] (see UserFactory)
        model = Task
        sqlalchemy_session_persistence = "commit"
        exclude = ("owner",)

    owner = SubFactory(UserFactory)
    user_id = SelfAttribute("owner.id")
    title = Faker("sentence", nb_words=4)
    description = Faker("text", max_nb_chars=200)
    completed = False
    created_at = LazyFunction(utc_now)
    updated_at = SelfAttribute("created_at")


def bind(session: Session | None) -> None:
    for factory_class in (UserFactory, TaskFactory, IdempotencyKeyFactory):
        # factory-boy sets its options with setattr, so its options class declares none.
        factory_class._meta.sqlalchemy_session = session  # pyright: ignore[reportAttributeAccessIssue]


class IdempotencyKeyFactory(SQLAlchemyModelFactory):
    class Meta:  # pyright: ignore[reportIncompatibleVariableOverride] (see UserFactory)
        model = IdempotencyKey
        sqlalchemy_session_persistence = "commit"
        exclude = ("owner",)

    owner = SubFactory(UserFactory)
    user_id = SelfAttribute("owner.id")
    key = LazyFunction(lambda: str(uuid.uuid4()))
    request_fingerprint = "0" * 64
    task_id = 1
    response_body = "{}"
    created_at = LazyFunction(lambda: utc_now() - timedelta(hours=25))
    expires_at = LazyFunction(lambda: utc_now() - timedelta(hours=1))


def insert_tasks(session: Session, owner: User, count: int) -> None:
    """`count` tasks of `owner`, newest first as numbered ("task 0" the newest), built by
    TaskFactory and stored by one INSERT: a long list, quickly."""
    now = utc_now()
    rows = build_batch(
        dict,
        count,
        FACTORY_CLASS=TaskFactory,
        owner=owner,
        title=Sequence(lambda n: f"task {n}"),
        created_at=Sequence(lambda n: now - timedelta(seconds=n)),
    )
    session.execute(insert(Task), rows)
    session.commit()
