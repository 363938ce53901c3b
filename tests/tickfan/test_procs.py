"""How many fan-out processes a demo runs: from the cores it may use (``auto``) or as asked."""

from __future__ import annotations

import argparse

import pytest

from tickfan.demo import add_arguments
from tickfan.procs import fanout_workers, usable_cores, workers_arg


def test_auto_runs_one_process_per_core() -> None:
    for cores in (1, 2, 8, 64):
        count, why = fanout_workers(None, cores)
        assert count == cores
        assert why.startswith("auto") and str(cores) in why
    assert fanout_workers(None, 0)[0] == 1  # an affinity read as empty still serves


def test_a_count_asked_for_is_kept_and_more_than_the_cores_is_said() -> None:
    assert fanout_workers(2, 8) == (2, "asked for")
    count, why = fanout_workers(4, 2)
    assert count == 4
    assert "4 on 2 cores" in why


@pytest.mark.parametrize(("text", "expected"), [("auto", None), ("AUTO", None), ("1", 1), ("4", 4)])
def test_the_flag_reads_a_count_or_auto(text: str, expected: int | None) -> None:
    assert workers_arg(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "two", ""])
def test_the_flag_refuses_what_is_not_a_count(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        workers_arg(text)


def test_the_demo_defaults_to_one_process_and_refuses_a_bad_count_clearly(capsys: pytest.CaptureFixture[str]
                                                                          ) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).fanout_workers == 1
    assert parser.parse_args(["--fanout-workers", "auto"]).fanout_workers is None
    assert parser.parse_args(["--fanout-workers", "3"]).fanout_workers == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--fanout-workers", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_usable_cores_is_this_process_affinity() -> None:
    assert 1 <= usable_cores() <= 4096
