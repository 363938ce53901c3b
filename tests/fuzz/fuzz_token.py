"""Fuzz the bearer-token and ticket parser (``vocab.auth.Verifier``): any input is an ``AuthError``, never another
exception. The first byte picks the form: odd, the rest is the token as it arrives (header, query parameter,
Refresh message); even, the rest is split at the first NUL into a JOSE header and a claims set that are signed
with the verifier's key, so the claim checks behind the signature are reached too.

``python -m tests.fuzz.run --seconds 20 token``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from vocab.auth import AuthError, Verifier, bearer

KEY = b"fuzzing-only-hs256-key-of-at-least-32-bytes"
VERIFIER = Verifier(secret=KEY.decode())


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def signed(header: bytes, claims: bytes) -> str:
    signing_input = _b64(header) + b"." + _b64(claims)
    return (signing_input + b"." + _b64(hmac.new(KEY, signing_input, hashlib.sha256).digest())).decode()


def one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    if data[0] & 1:
        token = body.decode("latin-1")
        try:
            bearer("Bearer " + token)
        except AuthError:
            pass
    else:
        header, _, claims = body.partition(b"\0")
        token = signed(header, claims)
    for check in (VERIFIER.claims, VERIFIER.ticket):
        try:
            check(token)
        except AuthError:
            pass


_NOW = int(time.time())
SEEDS: list[bytes] = [
    b"\x00" + b'{"alg":"HS256","typ":"JWT"}\0{"sub":"alice","iss":"tickfan","aud":"tickfan","iat":%d,"exp":%d}'
    % (_NOW, _NOW + 600),
    b"\x00" + b'{"alg":"HS256"}\0{"sub":"alice","iss":"tickfan","aud":"tickfan","exp":253402300799}',
    b"\x00" + b'{"alg":"HS256","kid":[1]}\0{"sub":"a","iss":"tickfan","aud":["tickfan"],"exp":1e999,"iat":NaN}',
    b"\x00" + b'{"alg":"HS256"}\0{"sub":"alice","iss":"tickfan","aud":"tickfan:ws-ticket","exp":%d,"jti":"x",'
              b'"tok_exp":"soon"}' % (_NOW + 30),
    b"\x01" + signed(b'{"alg":"HS256"}', b'{"sub":"alice","iss":"tickfan","aud":"tickfan","exp":%d}'
                     % (_NOW + 60)).encode(),
    b"\x01eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
    b"\x01not.a.jwt",
]


if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
