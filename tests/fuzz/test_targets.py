"""Every fuzz target runs over its seeds (and a few hostile variants of them) in ``make test``."""

from __future__ import annotations

import importlib

import pytest

from tests.fuzz.run import targets


@pytest.mark.parametrize("name", targets())
def test_target_holds_its_contract_on_its_seeds(name: str) -> None:
    module = importlib.import_module(f"tests.fuzz.fuzz_{name}")
    seeds: list[bytes] = list(module.SEEDS)
    assert seeds, f"fuzz_{name} has no seeds"
    for seed in seeds:
        for variant in (seed, seed[:-1], seed[: len(seed) // 2], seed + b"\x00", bytes(b ^ 0xFF for b in seed), b""):
            module.one_input(variant)
