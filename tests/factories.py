"""factory-boy factories for the tables; `bind` points them at the test's session."""

import uuid

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from shared.db import Task, User, utc_now


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
    for factory_class in (UserFactory, TaskFactory):
        factory_class._meta.sqlalchemy_session = session
