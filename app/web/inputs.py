"""The one rule for text and numbers that come in from outside: forms, query strings and path segments.

PostgreSQL refuses a NUL byte in any text and integers beyond int4/int8, and Python happily passes both
through, so without these types bad input reaches the database and answers 500. Every boundary type
(the form Structs in `app/*/schemas.py`, query and path parameters in `app/*/routes.py`) uses the types
below, so a bad value is refused before any handler runs, with a 400 that names the field
(`app.web.errors` words it through `describe_problem`).

- Form fields (msgspec Structs): `Line(n)` / `Text(n)`: msgspec `Meta` constraints.
- Query parameters: `QueryLine(n)`; integers `Int4Query(...)`. Litestar reads `Parameter` (not msgspec
  `Meta`) for query and path parameters, hence the two families.
- Path integers: `PathInt4` / `PathInt8`.

Lengths follow the columns (`Varchar(length=...)` in the Piccolo tables); free text stored in `Text`
columns gets a generous bound so a 100k-character post is refused instead of stored.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import msgspec
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from litestar.types import ASGIApp, Receive, Scope, Send
from msgspec import Meta

from app.errors import InvalidInput

# C0 controls, DEL and C1 controls: never part of text a person typed. Multi-line text keeps \t \n \r.
# (`$` also matches before one trailing newline in Python; a trailing newline is harmless, a NUL is not.)
SINGLE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1

# Free text in Text columns (notes, reasons, instructions): the services enforce their own (smaller)
# limits with friendlier words; this bound only keeps megabytes out of the form parser and the logs.
TEXT_MAX = 10_000


def Line(max_length: int, min_length: int = 0) -> Any:  # a type factory: used in annotations like a type
    """A single-line form field of at most `max_length` characters, no control characters."""
    return Annotated[str, Meta(min_length=min_length, max_length=max_length, pattern=SINGLE_LINE)]


def Text(max_length: int = TEXT_MAX) -> Any:
    """A multi-line form field (textarea): tabs and line breaks allowed, other control characters not."""
    return Annotated[str, Meta(max_length=max_length, pattern=MULTI_LINE)]


def QueryLine(max_length: int) -> Any:
    """A single-line query parameter."""
    return Annotated[str, Parameter(max_length=max_length, pattern=SINGLE_LINE)]


def Int4Query(ge: int = 0, le: int = INT4_MAX) -> Any:
    """An integer query parameter that fits PostgreSQL's `integer`."""
    return Annotated[int, Parameter(ge=ge, le=le)]


# Positions and versions (lesson index, module index, package version): int4 columns, counted from 1.
PathInt4 = Annotated[int, Parameter(ge=1, le=INT4_MAX)]
# Ids of bigserial columns (the audit log).
PathInt8 = Annotated[int, Parameter(ge=1, le=INT8_MAX)]

# Single-line fields by what they hold, with the length of the column they end up in.
Title = Line(200)
Role = Line(16)
UUIDText = Line(64)  # a UUID typed into a form (<select> value); parsed by the handler

# Dates people type into filters. Outside these years a date is a typo (and 9999-12-31 + 1 day overflows).
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)


def parse_date(raw: str, label: str) -> dt.date | None:
    """A YYYY-MM-DD filter value, or None when empty; InvalidInput (400) with `label` otherwise."""
    if not raw:
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a date like 2026-01-31.") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise InvalidInput(f"{label} must be between {EARLIEST_DATE} and {LATEST_DATE}.")
    return value


_REGEX = re.compile(r"Expected `str` matching regex '.*'")
_MAX_LENGTH = re.compile(r"Expected `str` of length <= (\d+)")
_MIN_LENGTH = re.compile(r"Expected `str` of length >= (\d+)")
_MAX_ITEMS = re.compile(r"Expected `(?:array|object)` of length <= (\d+)")
_MIN_ITEMS = re.compile(r"Expected `(?:array|object)` of length >= (\d+)")
_LE = re.compile(r"Expected `(?:int|float)` <= (-?[\d.e+]+)")
_GE = re.compile(r"Expected `(?:int|float)` >= (-?[\d.e+]+)")


def describe_problem(message: str) -> str:
    """msgspec's validation message in words a person can act on (the field name is added by the caller)."""
    if _REGEX.search(message):
        return "must not contain control characters (such as a NUL byte)"
    for pattern, words in ((_MAX_LENGTH, "must be at most {} characters long"),
                           (_MIN_LENGTH, "must be at least {} characters long"),
                           (_MAX_ITEMS, "can have at most {} entries"), (_MIN_ITEMS, "needs at least {} entries"),
                           (_LE, "must be at most {}"), (_GE, "must be at least {}")):
        if found := pattern.search(message):
            text = words.format(found.group(1))
            return text.replace(" 1 entries", " 1 entry").replace(" 1 characters", " 1 character")
    if "got `array`" in message:
        return "was sent more than once"
    return message


_AT = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(\w+)`")
_WRONG_TYPE = re.compile(r"Expected `(\w+)`(?: \| \w+)*, got `(\w+)`")
_PATH_PARTS = re.compile(r"\.(\w+)|\[(\d+)\]")
_TYPE_WORDS = {"str": "text", "int": "a whole number", "float": "a number", "array": "a list",
               "object": "a group of fields",
               "bool": "yes or no"}


class FieldProblem(msgspec.Struct, frozen=True):
    """One validation failure, for people: `field` is the JSON path of the offending field ("concepts.0.name"
    style, empty for the whole document) and `label` its name in words ("Concepts 1 › name")."""

    field: str
    label: str
    message: str

    def __str__(self) -> str:
        return f"{self.label}: {self.message}" if self.label else self.message


def _label(parts: list[str], labels: dict[str, str]) -> str:
    words = []
    for part in parts:
        if part.isdigit() and words:
            words[-1] = f"{words[-1]} {int(part) + 1}"
        elif part.isdigit():
            words.append(f"item {int(part) + 1}")
        else:
            words.append(labels.get(part, part.replace("_", " ")))
    text = " › ".join(words)
    return text[:1].upper() + text[1:]


def explain_validation(exc: msgspec.ValidationError, labels: dict[str, str] | None = None) -> FieldProblem:
    """msgspec's ValidationError (``Expected `str` of length >= 5 - at `$.concepts[0].name` ``) as a field
    path, a label and a message a person can act on: ("concepts.0.name", "Concepts 1 › name",
    "must be at least 5 characters long"). `labels` renames fields (`{"overview": "Explanation overview"}`)."""
    labels = labels or {}
    found = _AT.match(str(exc))
    message, path = found.group("message"), found.group("path") or "$"
    parts = [name or index for name, index in _PATH_PARTS.findall(path[1:])]
    if missing := _MISSING.search(message):
        parts.append(missing.group(1))
        words = "is required"
    elif wrong := _WRONG_TYPE.search(message):
        words = f"must be {_TYPE_WORDS.get(wrong.group(1), wrong.group(1))}"
    else:
        words = describe_problem(message)
    return FieldProblem(".".join(parts), _label(parts, labels), words)


_PATH_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters_in_path(app: ASGIApp) -> ASGIApp:
    """Middleware: a path with a control character (`/static/app.js%00.png`) names no page or file.
    Without this the static files router hands the NUL to the OS, which raises, and that answered 500."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _PATH_CONTROLS.search(scope.get("path", "")):
            raise NotFoundException("There is no page at this address.")
        await app(scope, receive, send)

    return middleware
