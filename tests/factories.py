"""factory-boy factories for the tables; `bind` points them at the test's session."""

import uuid
from datetime import timedelta

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import insert
from sqlalchemy.orm import Session

from shared.db import IdempotencyKey, Task, User, utc_now


class UserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User
        # Several tasks may name one owner by id: the second must find the first.
        sqlalchemy_get_or_create = ("id",)
        sqlalchemy_session_persistence = "commit"

    # Better Auth ids are random 32-character strings.
    id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    email = factory.LazyAttribute(lambda user: f"{user.id[:8]}@example.com")
    name = factory.Faker("name")
    created_at = factory.LazyFunction(utc_now)


class TaskFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Task
        sqlalchemy_session_persistence = "commit"
        exclude = ("owner",)

    owner = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("owner.id")
    title = factory.Faker("sentence", nb_words=4)
    description = factory.Faker("text", max_nb_chars=200)
    completed = False
    created_at = factory.LazyFunction(utc_now)
    updated_at = factory.SelfAttribute("created_at")


def bind(session: Session | None) -> None:
    for factory_class in (UserFactory, TaskFactory, IdempotencyKeyFactory):
        factory_class._meta.sqlalchemy_session = session


class IdempotencyKeyFactory(SQLAlchemyModelFactory):
    class Meta:
        model = IdempotencyKey
        sqlalchemy_session_persistence = "commit"
        exclude = ("owner",)

    owner = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("owner.id")
    key = factory.LazyFunction(lambda: str(uuid.uuid4()))
    request_fingerprint = "0" * 64
    task_id = 1
    response_body = "{}"
    created_at = factory.LazyFunction(lambda: utc_now() - timedelta(hours=25))
    expires_at = factory.LazyFunction(lambda: utc_now() - timedelta(hours=1))


def insert_tasks(session: Session, owner: User, count: int) -> None:
    """`count` tasks of `owner`, newest first as numbered ("task 0" the newest), built by
    TaskFactory and stored by one INSERT: a long list, quickly."""
    now = utc_now()
    rows = factory.build_batch(
        dict,
        count,
        FACTORY_CLASS=TaskFactory,
        owner=owner,
        title=factory.Sequence(lambda n: f"task {n}"),
        created_at=factory.Sequence(lambda n: now - timedelta(seconds=n)),
    )
    session.execute(insert(Task), rows)
    session.commit()
