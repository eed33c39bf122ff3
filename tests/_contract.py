"""The HTTP contract every phase serves, checked through a phase's public entry (README.md,
"The API"): the same battery for every phase, only the answer to a new signup differs."""

from __future__ import annotations

import httpx

CREATED = {201: "user created successfully", 202: "signup accepted"}


def check_contract(url: str, created: int) -> None:
    """A new signup (trimmed, lower-cased), the same email in another case, bad input of each
    kind, a wrong method and readiness, each answered as the contract says."""
    assert httpx.get(f"{url}/").json() == {"message": "welcome"}
    body = {"email": "Ada@Example.com", "first_name": " Ada ", "last_name": "Lovelace"}
    accepted = httpx.post(f"{url}/signup", json=body)
    assert accepted.status_code == created, accepted.text
    assert accepted.json()["message"] == CREATED[created]
    user = accepted.json()["user"]
    assert (user["email"], user["first_name"], user["last_name"]) == (
        "ada@example.com",
        "Ada",
        "Lovelace",
    )
    again = httpx.post(f"{url}/signup", json={**body, "email": "ADA@example.com"})
    assert (again.status_code, again.json()) == (409, {"error": "email already exists"})
    invalid = httpx.post(f"{url}/signup", json={**body, "email": "nope"})
    assert (invalid.status_code, invalid.json()) == (400, {"error": "invalid email format"})
    garbage = httpx.post(
        f"{url}/signup", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert (garbage.status_code, garbage.json()) == (400, {"error": "invalid request body"})
    wrong = httpx.get(f"{url}/signup")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method not allowed"})
    assert httpx.get(f"{url}/readyz").status_code == 200
