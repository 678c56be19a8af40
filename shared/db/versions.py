"""A task's version as its HTTP entity tag (ETag), and the precondition headers that name one."""

import re
from typing import Annotated

from fastapi import Header
from pydantic import AfterValidator, WithJsonSchema

# A task's version is its entity tag (RFC 9110): it changes whenever the task changes. A list
# of tags is split at commas, so a tag holding a comma (never one of ours) is not accepted.
_TAG = r'[ \t]*(W/)?"([\x21\x23-\x2b\x2d-\x7e\x80-\xff]*)"[ \t]*'
_ENTITY_TAG = re.compile(_TAG)
# What `versions_in` accepts, stated in the OpenAPI document, so clients (and Schemathesis)
# know a malformed header is a 400.
_ENTITY_TAG_LIST_PATTERN = rf"^[ \t]*\*[ \t]*$|^{_TAG}(,{_TAG})*$"


FIRST_VERSION = 1
"""A new task's version: the ETag of every 201 that created one, a replay's included."""


def entity_tag(version: int) -> str:
    return f'"{version}"'


_LARGEST_VERSION = 2**63 - 1  # tasks.version is a BIGINT


def versions_in(header: str, *, weak_matches: bool) -> set[int] | None:
    """The versions an `If-Match` / `If-None-Match` header names; None for `*` (any version).

    `If-Match` compares strongly (a weak tag matches nothing), `If-None-Match` weakly. Tags this
    service did not issue match nothing. A header that is not a list of tags is a ValueError.
    """
    if header.strip(" \t") == "*":
        return None
    versions = set()
    for part in header.split(","):
        match = _ENTITY_TAG.fullmatch(part)
        if match is None:
            raise ValueError('must be "*" or a list of entity tags such as "3"')
        weak, tag = match.groups()
        # Only what this service issues can match: ASCII digits ("²" is a digit to Python, and
        # not to int()) within a BIGINT, the column the versions are compared with.
        if (weak and not weak_matches) or not (tag.isascii() and tag.isdigit()):
            continue
        version = int(tag)
        if version <= _LARGEST_VERSION:
            versions.add(version)
    return versions


def _entity_tag_list(header: str | None) -> str | None:
    if header is not None:
        versions_in(header, weak_matches=True)  # raises on a malformed list
    return header


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Change only if the task is still at this version (its ETag, e.g. "3"); '
        "otherwise 412 and nothing changes.",
    ),
    AfterValidator(_entity_tag_list),
    # Absent or a string, never null, and malformed when it does not match (a 400).
    WithJsonSchema({"type": "string", "pattern": _ENTITY_TAG_LIST_PATTERN}),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="Answer 304 without a body if the task is still at this version (its ETag).",
    ),
    AfterValidator(_entity_tag_list),
    # Absent or a string, never null, and malformed when it does not match (a 400).
    WithJsonSchema({"type": "string", "pattern": _ENTITY_TAG_LIST_PATTERN}),
]
