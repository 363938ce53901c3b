"""Bearer tokens: minted, verified, refused when forged, malformed, expired, too long-lived, for another issuer
or audience, or signed with the key once published in the source; RS256/ES256 through JWKS; tickets."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from vocab import auth

KEY = "a-test-signing-key-that-is-32-bytes-long"
OLD_PUBLISHED_KEY = "tickfan-dev-secret-change-me-in-production"  # what vocab/auth.py once shipped as DEV_SECRET


def refused(token: str, verifier: auth.Verifier | None = None) -> str:
    with pytest.raises(auth.AuthError) as e:
        (verifier or auth.Verifier(secret=KEY)).claims(token)
    return e.value.code


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


@pytest.mark.parametrize("secret", ["", "x", "a" * 31, OLD_PUBLISHED_KEY])
def test_no_key_a_short_one_or_the_once_published_one_configures_nothing(secret: str) -> None:
    with pytest.raises(auth.KeyConfigError) as e:
        auth.load_verifier({"TICKFAN_JWT_SECRET": secret})
    assert "TICKFAN_JWT_SECRET" in str(e.value)


def test_a_token_signed_with_the_once_published_development_key_is_refused() -> None:
    forged = jwt.encode({"sub": "alice", "iss": "tickfan", "aud": "tickfan", "iat": int(time.time()),
                         "exp": int(time.time()) + 60}, OLD_PUBLISHED_KEY, algorithm="HS256")
    assert refused(forged, auth.load_verifier({"TICKFAN_JWT_SECRET": KEY})) == "invalid_token"
    assert "tickfan-dev-secret" not in Path(auth.__file__).read_text()  # published nowhere any more


def test_issuer_audience_and_required_claims() -> None:
    v = auth.load_verifier({"TICKFAN_JWT_SECRET": KEY, "TICKFAN_JWT_ISSUER": "https://id.example",
                            "TICKFAN_JWT_AUDIENCE": "brokerage"})
    good = auth.mint_token("alice", key=KEY, issuer="https://id.example", audience="brokerage")
    assert v.claims(good).user == "alice"
    assert refused(auth.mint_token("alice", key=KEY, issuer="https://evil.example", audience="brokerage"),
                   v) == "invalid_issuer"
    assert refused(auth.mint_token("alice", key=KEY, issuer="https://id.example", audience="another-app"),
                   v) == "invalid_audience"
    now = int(time.time())
    for missing in ("sub", "iss", "aud", "exp"):
        body = {"sub": "alice", "iss": "https://id.example", "aud": "brokerage", "iat": now, "exp": now + 60}
        del body[missing]
        assert refused(jwt.encode(body, KEY, algorithm="HS256"), v) == "invalid_token", missing


def test_a_token_valid_until_9999_is_refused_for_its_lifetime() -> None:
    forever = int(time.mktime((9999, 1, 1, 0, 0, 0, 0, 0, 0)))
    assert refused(auth.mint_token("alice", key=KEY, claims={"exp": forever})) == "token_lifetime"
    no_iat = jwt.encode({"sub": "alice", "iss": "tickfan", "aud": "tickfan", "exp": forever}, KEY, algorithm="HS256")
    assert refused(no_iat) == "token_lifetime"
    assert refused(auth.mint_token("alice", key=KEY, ttl=25 * 3600)) == "token_lifetime"
    short = auth.Verifier(secret=KEY, max_lifetime=60)
    assert refused(auth.mint_token("alice", key=KEY, ttl=3600), short) == "token_lifetime"
    assert short.claims(auth.mint_token("alice", key=KEY, ttl=60)).user == "alice"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_algorithms_other_than_the_configured_ones_are_refused() -> None:
    body = {"sub": "alice", "iss": "tickfan", "aud": "tickfan", "iat": int(time.time()), "exp": int(time.time()) + 60}
    unsigned = jwt.encode(body, "", algorithm="none")
    assert refused(unsigned) == "invalid_token"
    assert refused(jwt.encode(body, KEY, algorithm="HS512")) == "invalid_token"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(jwt.encode(body, rsa_key, algorithm="RS256")) == "invalid_token"  # no public keys configured


def _jwks(tmp_path: Path) -> tuple[dict[str, Any], Any, Any]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "r1", "alg": "RS256"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "e1", "alg": "ES256"}]
    return {"keys": keys}, rsa_key, ec_key


def _signed(key: Any, alg: str, kid: str, user: str = "alice", ttl: int = 60) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iss": "tickfan", "aud": "tickfan", "iat": now, "exp": now + ttl}, key,
                      algorithm=alg, headers={"kid": kid})


def test_rs256_and_es256_with_a_jwks_file(tmp_path: Path) -> None:
    jwks, rsa_key, ec_key = _jwks(tmp_path)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    v = auth.load_verifier({"TICKFAN_JWT_JWKS": str(path)})
    assert v.claims(_signed(rsa_key, "RS256", "r1")).user == "alice"
    assert v.claims(_signed(ec_key, "ES256", "e1")).user == "alice"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(_signed(other, "RS256", "r1"), v) == "invalid_token"  # right kid, wrong key
    assert refused(_signed(other, "RS256", "r9"), v) == "invalid_token"  # unknown kid
    # no secret: an HS256 token is refused, even one "signed" with the public key (algorithm confusion)
    assert refused(auth.mint_token("alice", key=KEY), v) == "invalid_token"
    with pytest.raises(auth.KeyConfigError):
        auth.load_verifier({"TICKFAN_JWT_JWKS": str(tmp_path / "missing.json")})


@pytest.fixture
def jwks_server(tmp_path: Path) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    jwks, rsa_key, _ = _jwks(tmp_path)
    served = {"body": json.dumps(jwks).encode()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(served["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", rsa_key, served
    finally:
        server.shutdown()
        server.server_close()


def test_rs256_with_a_jwks_url_and_a_rotated_key(jwks_server: tuple[str, Any, dict[str, Any]]) -> None:
    from tests.conftest import wait_until

    url, rsa_key, served = jwks_server
    keys = auth.JwksKeys(url, min_refetch=0.05)
    v = auth.Verifier(jwks=keys)
    assert v.claims(_signed(rsa_key, "RS256", "r1")).user == "alice"
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rotated.public_key())), "kid": "r2", "alg": "RS256"}
    served["body"] = json.dumps({"keys": [jwk]}).encode()
    token = _signed(rotated, "RS256", "r2")
    assert refused(token, v) == "invalid_token"  # unknown yet: refused at once, fetched in the background

    def accepted() -> bool:
        try:
            return v.claims(token).user == "alice"
        except auth.AuthError:
            return False

    wait_until(accepted, what="the rotated key fetched from the JWKS URL")
    with pytest.raises(auth.KeyConfigError):
        auth.JwksKeys("http://127.0.0.1:9/nothing-listens-here", timeout=2)


def test_tickets_are_short_lived_single_use_and_never_bearer_tokens() -> None:
    v = auth.Verifier(secret=KEY)
    bearer_claims = v.claims(auth.mint_token("alice", key=KEY, ttl=600))
    ticket = v.mint_ticket(bearer_claims)
    claims, jti, expires = v.ticket(ticket)
    assert claims == bearer_claims and expires <= time.time() + auth.TICKET_TTL + 1
    with pytest.raises(auth.AuthError) as e:
        v.claims(ticket)  # another audience: a ticket is no bearer token
    assert e.value.code == "invalid_audience"
    with pytest.raises(auth.AuthError) as e:
        v.ticket(auth.mint_token("alice", key=KEY))  # nor a bearer token a ticket
    assert e.value.code == "invalid_ticket"
    with pytest.raises(auth.AuthError) as e:
        v.ticket(v.mint_ticket(bearer_claims, now=time.time() - 60))
    assert e.value.code == "token_expired"
    used = auth.UsedTickets()
    assert used.use(jti, expires, time.time()) and not used.use(jti, expires, time.time())


# Hostile input: whatever arrives, the parser answers with an AuthError and nothing else.
_JWTISH = st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(
    lambda b: jwt.utils.base64url_encode(b).decode())), min_size=1, max_size=4).map(".".join)
_VERIFIER = auth.Verifier(secret=KEY)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=300), _JWTISH, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_hostile_tokens_only_ever_raise_auth_error(token: str) -> None:
    for check in (_VERIFIER.claims, _VERIFIER.ticket):
        try:
            check(token)
        except auth.AuthError:
            pass


def hs256(claims: dict[str, Any], header: dict[str, Any], key: str = KEY) -> str:
    def part(value: dict[str, Any]) -> bytes:
        return jwt.utils.base64url_encode(json.dumps(value).encode())

    signing_input = part(header) + b"." + part(claims)
    mac = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + jwt.utils.base64url_encode(mac)).decode()


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                        max_size=2))


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["sub", "iss", "aud", "exp", "iat", "nbf", "tok_exp", "jti"]), _VALUES),
       st.dictionaries(st.sampled_from(["kid", "alg", "typ", "crit"]), _VALUES))
def test_signed_tokens_with_hostile_claims_only_ever_raise_auth_error(claims: dict[str, Any],
                                                                     headers: dict[str, Any]) -> None:
    token = hs256(claims, {"alg": "HS256", **headers})  # signed by hand: PyJWT would not encode some of these
    if claims == {} and headers == {}:  # the hand signer makes tokens the verifier checks past the signature
        now = int(time.time())
        good = {"sub": "alice", "iss": "tickfan", "aud": "tickfan", "iat": now, "exp": now + 60}
        assert _VERIFIER.claims(hs256(good, {"alg": "HS256"})).user == "alice"
    for check in (_VERIFIER.claims, _VERIFIER.ticket):
        try:
            check(token)
        except auth.AuthError:
            pass
