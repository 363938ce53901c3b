"""``POST /v1/dev/token``: a short-lived bearer token for one of the demo's users, for the web app's user picker.

It exists only when the server signs with the machine's development key (``tickfan demo``'s, see
tickfan/devkey.py; the app layer decides and passes a :class:`DevTokens`): with a real ``TICKFAN_JWT_SECRET`` or
public keys the route is not mounted (404). Even then it mints only for the configured users (the demo seeds
alice and bob) that have an account in the ledger: a development key never becomes a way to act as anyone.
Tokens live ``ttl`` seconds (15 minutes): the page asks again, and keeps them in memory only.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from order_api.model import ApiError
from vocab.auth import USER_ID, mint_token

DEV_TOKEN_TTL = 900.0


@dataclass(frozen=True, slots=True)
class DevTokens:
    """The development key and who may get a token signed with it."""

    key: str
    users: frozenset[str]
    ttl: float = DEV_TOKEN_TTL

    def user_of(self, raw: bytes) -> str:
        """The user a ``{"user": "alice"}`` body asks for, if tokens may be minted for them; ``ApiError`` else."""
        try:
            body = msgspec.json.decode(raw, type=DevTokenBody)
        except msgspec.DecodeError as e:
            raise ApiError(400, "invalid_body", f'give {{"user": "alice"}}: {str(e)[:200]}') from None
        if not USER_ID.match(body.user) or body.user not in self.users:
            raise ApiError(403, "user_not_allowed", f"development tokens are only for the demo's users: "
                                                    f"{', '.join(sorted(self.users))}")
        return body.user

    def mint(self, user: str, *, issuer: str, audience: str) -> str:
        return mint_token(user, key=self.key, ttl=self.ttl, issuer=issuer, audience=audience)


class DevTokenBody(msgspec.Struct, forbid_unknown_fields=True):
    user: str
