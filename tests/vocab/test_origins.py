"""Browser origins (pure): what an origin is, the node's own ones, and the policy's decisions and counts."""

from __future__ import annotations

import pytest

from vocab.origins import OriginPolicy, normalize_origin, own_origins


@pytest.mark.parametrize("text,origin", [
    ("http://localhost:8000", "http://localhost:8000"),
    ("HTTP://LocalHost:8000/", "http://localhost:8000"),
    ("https://trade.example.com:443", "https://trade.example.com"),
    ("http://example.com:80", "http://example.com"),
    ("http://[::1]:8000", "http://[::1]:8000"),
])
def test_origins_compare_as_browsers_send_them(text: str, origin: str) -> None:
    assert normalize_origin(text) == origin


@pytest.mark.parametrize("text", ["*", "null", "localhost:8000", "ftp://example.com", "http://example.com/app",
                                  "http://example.com?x=1", "http://user:pw@example.com", "http://:80",
                                  "http://example.com:99999", "file:///etc/passwd", ""])
def test_anything_else_is_not_an_origin(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(text)


def test_a_loopback_node_owns_every_loopback_name_of_its_port() -> None:
    assert own_origins("127.0.0.1", 8000) == ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000")
    assert own_origins("0.0.0.0", 443, tls=True) == ("https://127.0.0.1", "https://localhost", "https://[::1]")
    assert own_origins("10.1.2.3", 8000) == ("http://10.1.2.3:8000",)


def test_the_policy_accepts_no_origin_and_its_own_and_refuses_the_rest() -> None:
    policy = OriginPolicy.of(["http://localhost:8000", "https://app.example.com"])
    assert policy.admit(None)  # not a browser
    assert policy.admit("http://localhost:8000") and policy.admit("https://APP.example.com:443")
    for foreign in ("http://localhost:8001", "https://evil.example", "null", "http://localhost:8000/x", "garbage"):
        assert not policy.admit(foreign)
    assert policy.counters() == {"absent": 1, "granted": 2, "refused": 5, "foreign_read": 0}
    assert b'"origin_not_allowed"' in policy.refusal_body("https://evil.example")
