from __future__ import annotations

import pytest

from signup.validation import (
    InvalidBody,
    SignupRequest,
    ValidationFailure,
    parse_body,
    validate,
)

OK = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}


def with_(**changes: object) -> dict[str, object]:
    return {**OK, **changes}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (with_(email=""), "email", "email is required"),
        (with_(email="   "), "email", "email is required"),
        ({"first_name": "A", "last_name": "B"}, "email", "email is required"),
        (with_(email=None), "email", "email is required"),
        (with_(email="not-an-email"), "email", "invalid email format"),
        (with_(email="a@b.c"), "email", "invalid email format"),
        (with_(email="ä@example.com"), "email", "invalid email format"),
        (with_(email="a" * 250 + "@ex.com"), "email", "invalid email format"),
        (with_(first_name=""), "first_name", "first name is required"),
        (with_(first_name=" \t\n"), "first_name", "first name is required"),
        (with_(first_name="x" * 101), "first_name", "first name must be less than 100 characters"),
        (with_(first_name="é" * 101), "first_name", "first name must be less than 100 characters"),
        (with_(first_name="A\x00B"), "first_name", "first name contains invalid characters"),
        (with_(last_name=""), "last_name", "last name is required"),
        (with_(last_name="y" * 101), "last_name", "last name must be less than 100 characters"),
        (with_(last_name="\x00"), "last_name", "last name contains invalid characters"),
        # Order: the first failing field wins, checked email, first name, last name.
        ({"email": "bad", "first_name": "", "last_name": ""}, "email", "invalid email format"),
        (with_(first_name="", last_name=""), "first_name", "first name is required"),
    ],
)
def test_rejects_with_the_contract_message(
    data: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailure) as caught:
        validate(data)
    assert (caught.value.field, caught.value.message) == (field, message)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (OK, SignupRequest("ada@example.com", "Ada", "Lovelace")),
        (
            with_(email="  Ada@Example.COM ", first_name="  Ada ", last_name=" L "),
            SignupRequest("ada@example.com", "Ada", "L"),
        ),
        (with_(first_name="x" * 100), SignupRequest("ada@example.com", "x" * 100, "Lovelace")),
        (with_(first_name="é" * 100), SignupRequest("ada@example.com", "é" * 100, "Lovelace")),
        (with_(last_name="李小龍"), SignupRequest("ada@example.com", "Ada", "李小龍")),
        (with_(extra="ignored"), SignupRequest("ada@example.com", "Ada", "Lovelace")),
    ],
)
def test_accepts_and_normalises(data: dict[str, object], expected: SignupRequest) -> None:
    assert validate(data) == expected


@pytest.mark.parametrize(
    "data",
    [with_(email=42), with_(first_name=["a"]), with_(last_name={"x": 1}), with_(email=True)],
)
def test_wrong_types_are_an_invalid_body(data: dict[str, object]) -> None:
    with pytest.raises(InvalidBody):
        validate(data)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"null",
        b"42",
        b'{"email": "\xff\xfe"}',
        b'{"email": "\\ud800@example.com"}',
        b"\x00",
    ],
)
def test_unparseable_bodies(body: bytes) -> None:
    with pytest.raises(InvalidBody):
        parse_body(body)


def test_parses_an_object() -> None:
    assert parse_body(b'{"email": "a@b.co"}') == {"email": "a@b.co"}
