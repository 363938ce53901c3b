"""Bearer tokens: minted, verified, refused when forged, malformed or expired (also once cached)."""

from __future__ import annotations

import time

import pytest

from vocab import auth

KEY = "a-test-signing-key-that-is-32-bytes-long"


def test_round_trip_and_refusals() -> None:
    token = auth.mint_token("alice", key=KEY)
    assert auth.verify_token(token, key=KEY) == "alice"
    assert auth.bearer(f"Bearer {token}") == token
    for bad, code in [(auth.mint_token("alice", key=KEY + "x"), "invalid_token"), ("not.a.jwt", "invalid_token"),
                      (auth.mint_token("alice", key=KEY, ttl=5, now=1_000), "token_expired")]:
        with pytest.raises(auth.AuthError) as e:
            auth.verify_token(bad, key=KEY)
        assert e.value.code == code
    for header in (None, "", "Basic abc", "Bearer "):
        with pytest.raises(auth.AuthError) as e:
            auth.bearer(header)
        assert e.value.code == "unauthenticated"
    with pytest.raises(ValueError):
        auth.mint_token("no spaces allowed", key=KEY)


def test_a_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = auth.mint_token("bob", key=KEY, ttl=60)
    assert auth.verify_token(token, key=KEY) == "bob"
    later = time.time() + 120
    monkeypatch.setattr("vocab.auth.time.time", lambda: later)
    with pytest.raises(auth.AuthError) as e:
        auth.verify_token(token, key=KEY)
    assert e.value.code == "token_expired"
