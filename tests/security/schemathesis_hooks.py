"""Schemathesis hooks for the coverage run (`SCHEMATHESIS_HOOKS`): a request it labels valid is
made valid, where Schemathesis 4.32.5 cannot tell it is not.

- An optional header whose pattern needs a character besides letters and digits, as every
  entity tag needs its quotes (`If-Match: "3"`), gets no valid value from the coverage phase;
  it then sends a broken one (`If-Match: 0`) in the requests it labels valid, and reports the
  400 that rightly follows as "valid data rejected". Such a header is left out of those
  requests. Its broken values are still sent, labelled invalid, and must be refused; valid
  entity tags are drawn by the Hypothesis-based tests in test_schemathesis.py.
- A list cursor is opaque: only one a `Link` header gave out is valid, which no schema can
  say, so a made-up one is a 400 however it is drawn (as documented). Requests labelled valid
  page without one; those labelled invalid still send made-up cursors.

Editing a case here makes Schemathesis check it against the document again before it is sent.
"""

import re
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for parameter in case.operation.iter_parameters():
        if parameter.location != ParameterLocation.HEADER or parameter.name not in (
            case.headers or {}
        ):
            continue
        pattern = parameter.definition.get("schema", {}).get("pattern")
        if pattern is not None and re.search(pattern, str(case.headers[parameter.name])) is None:
            del case.headers[parameter.name]
    if case.query and "cursor" in case.query:
        del case.query["cursor"]
