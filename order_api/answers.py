"""How the order API answers: JSON bodies, and every refusal or fault as its 4xx/503/500 with a machine-readable code.

One definition for the Starlette routes (order_api/api.py) and the raw ASGI route of ``POST /v1/orders``
(order_api/hot_path.py), so both answer a refusal with the same status, code and message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import asyncpg
import orjson
import redis.exceptions
from starlette.requests import Request
from starlette.responses import Response

from order_api.batching import CommitOutcomeUnknown
from order_api.limits import BodyTooLarge
from order_api.model import ApiError
from vocab.auth import AuthError

log = logging.getLogger("tickfan.order_api")
T = TypeVar("T")


class FaultCounters(Protocol):
    """What ``answered`` counts (the order service: its /metrics)."""

    outcomes_unknown: int
    internal_errors: int


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def internal_answer(where: str, exc: BaseException) -> Response:
    """The last resort: logged with its traceback here, answered without one."""
    log.error("unhandled error on %s", where, exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


async def internal_error(request: Request, exc: Exception) -> Response:
    """Starlette's handler of last resort (``exception_handlers``)."""
    return internal_answer(f"{request.method} {request.url.path}", exc)


async def answered(where: Callable[[], str], counters: FaultCounters,
                   run: Callable[[], Awaitable[T]]) -> T | Response:
    """``run``'s answer, every refusal and fault turned into its 4xx/503/500 with a code (``where``: the request's
    method and path, for the log of a fault)."""
    try:
        return await run()
    except AuthError as e:
        return error_response(401, e.code, str(e))
    except BodyTooLarge as e:
        response = error_response(e.status, e.code, e.message)
        response.headers["connection"] = "close"  # the rest of the body is not read: drop the connection
        return response
    except ApiError as e:
        return error_response(e.status, e.code, e.message)
    except CommitOutcomeUnknown as e:  # before OSError: it is one, but something may have been written
        counters.outcomes_unknown += 1
        log.warning("commit outcome unknown: %s", e)
        return error_response(503, "outcome_unknown", "the connection to the ledger was lost as the change "
                              "was committed: it may have been written. Retry the same request; an order with "
                              "the same idempotency_key (never a new one): the retry returns the order if it "
                              "was placed")
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, asyncpg.InternalClientError,
            asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.OperatorInterventionError) as e:
        # a pooled connection to a server that was shut down can fail as InternalClientError or
        # AdminShutdownError before anything was sent; a loss after sending is CommitOutcomeUnknown above
        log.warning("ledger unavailable: %s", e)
        return error_response(503, "ledger_unavailable", "the ledger is unavailable; nothing was written")
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as e:
        # down, timed out, refused (a user without the ACL rights), a cluster's slot uncovered mid-failover
        log.warning("quotes unavailable: %s", e)
        return error_response(503, "quotes_unavailable", "prices are unavailable; nothing was written")
    except Exception as e:  # a bug: logged with its traceback, answered without it
        counters.internal_errors += 1
        return internal_answer(where(), e)
