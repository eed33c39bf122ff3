"""Turn a request body into a valid signup or a precise client error.

The rules and messages are the original Go service's, checked in its order after trimming.
Two deliberate differences, both so that bad input can never reach the database as a 500:
lengths count characters (the column is VARCHAR(100), which counts characters; Go's `len`
counted bytes), and text PostgreSQL cannot store (NUL, lone surrogates) is refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import orjson

Field = Literal["email", "first_name", "last_name"]
FIELDS: tuple[Field, ...] = ("email", "first_name", "last_name")
NAME_MAX = 100
# RFC 5321 caps a forward path at 256 octets including the angle brackets.
EMAIL_MAX = 254
_EMAIL = re.compile(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}")
_LABEL = {"first_name": "first name", "last_name": "last name"}


@dataclass(frozen=True, slots=True)
class SignupRequest:
    email: str  # trimmed and lower-cased: duplicates are case-insensitive
    first_name: str
    last_name: str


class InvalidBody(ValueError):
    """Not JSON, not an object, or a field of the wrong type."""


@dataclass(frozen=True, slots=True)
class ValidationFailure(Exception):
    field: Field
    message: str


def parse_body(body: bytes) -> dict[str, object]:
    try:
        data = orjson.loads(body)  # rejects invalid UTF-8 and lone surrogates
    except orjson.JSONDecodeError:
        raise InvalidBody from None
    if not isinstance(data, dict):
        raise InvalidBody
    return data


def validate(data: dict[str, object]) -> SignupRequest:
    """Raise InvalidBody or ValidationFailure, else return the normalised request."""
    values: dict[Field, str] = {}
    for field in FIELDS:
        value = data.get(field)
        if value is None:  # absent or null: Go decoded both to ""
            value = ""
        if not isinstance(value, str):
            raise InvalidBody
        values[field] = value.strip()

    email = values["email"]
    if not email:
        raise ValidationFailure("email", "email is required")
    if len(email) > EMAIL_MAX or not _EMAIL.fullmatch(email):
        raise ValidationFailure("email", "invalid email format")
    for field in ("first_name", "last_name"):
        label = _LABEL[field]
        value = values[field]
        if not value:
            raise ValidationFailure(field, f"{label} is required")
        if len(value) > NAME_MAX:
            raise ValidationFailure(field, f"{label} must be less than {NAME_MAX} characters")
        if "\x00" in value:
            raise ValidationFailure(field, f"{label} contains invalid characters")
    return SignupRequest(email.lower(), values["first_name"], values["last_name"])
