"""Every order example the OpenAPI document shows is an order the API takes, and every order type and time in
force has one (issue 15: the document shows each with an example)."""

from __future__ import annotations

from typing import Any, cast

import msgspec

from order_api.model import TIFS, parse_order
from order_api.openapi import ORDER_EXAMPLES, openapi_document


def test_every_example_is_a_valid_order() -> None:
    for name, example in ORDER_EXAMPLES.items():
        parse_order(msgspec.json.encode(example["value"]))  # raises ApiError with its code if not
        assert example["summary"], name


def test_every_order_type_and_time_in_force_has_an_example() -> None:
    values: list[dict[str, Any]] = [cast(dict[str, Any], e["value"]) for e in ORDER_EXAMPLES.values()]
    order_types = openapi_document()["components"]["schemas"]["Order"]["properties"]["type"]["enum"]
    assert set(order_types) <= {v.get("type", "market") for v in values}
    assert set(TIFS) <= {v.get("time_in_force", "day") for v in values}
    assert any("notional" in v for v in values) and any(isinstance(v.get("qty"), str) for v in values)
    assert any(v.get("extended_hours") for v in values)
