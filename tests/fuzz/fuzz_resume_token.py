"""Fuzz the resume-token decoder (``fanout.resume.TokenCodec``): any text decodes to a ``ResumeState`` or None,
never an exception. The first byte picks the form: odd, the rest is the token as a client sends it; even, the rest
is a token body signed with the codec's key, so the parser behind the MAC is reached too (a state it accepts must
encode back to a token that decodes to the same state).

``python -m tests.fuzz.run --seconds 20 resume_token``
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from fanout.resume import MAC_BYTES, ResumeState, TokenCodec, resume_key

KEY, _ = resume_key("fuzzing-only-resume-secret")
CODEC = TokenCodec(KEY, ("quotes", "trades", "depth"), 50)


def signed(body: bytes) -> str:
    mac = hmac.new(KEY, body, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


def one_input(data: bytes) -> None:
    if not data:
        return
    token = data[1:].decode("latin-1") if data[0] & 1 else signed(data[1:])
    state = CODEC.decode(token)
    if state is not None:
        assert CODEC.decode(CODEC.encode(state)) == state


SEEDS: list[bytes] = [
    b"\x01" + CODEC.encode(ResumeState(7, 9, {"AAPL": (3, 41), "TSLA": (1, 0)})).encode(),
    b"\x00" + base64.urlsafe_b64decode(CODEC.encode(ResumeState(1, 2, {"NVDA": (7, 2**40)})) + "==")[:-MAC_BYTES],
    b"\x00\x01" + bytes(16) + b"\x02\x04AAPL\x02\x05\x04TSLA\x01\x00",
    b"\x00\x01" + bytes(16) + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x01not a token",
]


if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
