"""Configuration (tickfan.config): flags > TICKFAN_* environment > TOML file > defaults, for every option of every
command; unknown file keys refused; variables naming no option ignored; old spellings kept; secrets masked."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tickfan import cli
from tickfan.config import ConfigError, Setting, effective, env_name, options_of

SECRET_DSN = "postgresql://ops:hunter2@db.internal:5432/tickfan_0"


def resolve(command: str, *argv: str, env: dict[str, str] | None = None
            ) -> tuple[argparse.Namespace, dict[str, Setting]]:
    parser, _ = cli.command_parser(command)
    return effective(parser, list(argv), command=command, environ=env or {}, commands=cli.COMMANDS,
                     known_anywhere=cli.known_options)


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tickfan.toml"
    path.write_text(text)
    return str(path)


def test_flags_win_over_the_environment_which_wins_over_the_file_which_wins_over_defaults(tmp_path: Path) -> None:
    f = toml(tmp_path, 'flush-ms = 30\nmax_gap = 99\nhttp = "127.0.0.1:9001"\n[node]\nflush_ms = 40\n')
    args, s = resolve("node", "--config", f, "--max-gap", "7", env={"TICKFAN_MAX_GAP": "8", "TICKFAN_HTTP":
                                                                     "0.0.0.0:9002"})
    assert (args.max_gap, s["max-gap"].source) == (7, "flag")
    assert (args.http, s["http"].source) == (("0.0.0.0", 9002), "env TICKFAN_HTTP")
    assert (args.flush_ms, s["flush-ms"].source) == (40.0, f"file {f} [node]")  # the table over the top level
    assert (args.ws, s["ws"].source) == (("127.0.0.1", 8765), "default")
    args, s = resolve("node", env={"TICKFAN_CONFIG": f})  # the file named by the environment
    assert (args.flush_ms, args.max_gap) == (40.0, 99) and s["max-gap"].source == f"file {f}"


def test_repeatable_options_switches_and_dates_from_the_environment_and_the_file(tmp_path: Path) -> None:
    f = toml(tmp_path, 'feed = ["239.1.1.1:30001", "239.1.1.2:30001"]\nquiet = true\nsession-date = 2019-01-30\n')
    args, s = resolve("node", "--config", f)
    assert args.feed == [("239.1.1.1", 30001), ("239.1.1.2", 30001)] and args.quiet is True
    assert str(args.session_date) == "2019-01-30"
    args, _ = resolve("node", "--config", f, env={"TICKFAN_FEED": "127.0.0.1:1, 127.0.0.1:2", "TICKFAN_QUIET": "0"})
    assert args.feed == [("127.0.0.1", 1), ("127.0.0.1", 2)] and args.quiet is False
    args, s = resolve("node", "--feed", "127.0.0.1:3", env={"TICKFAN_FEED": "127.0.0.1:1"})
    assert args.feed == [("127.0.0.1", 3)] and s["feed"].source == "flag"  # the flag replaces, never appends


def test_a_bad_value_names_its_variable_or_key_and_goes_through_the_options_own_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TICKFAN_FLUSH_MS: invalid float value: 'fast'"):
        resolve("node", env={"TICKFAN_FLUSH_MS": "fast"})
    with pytest.raises(ConfigError, match="TICKFAN_HTTP"):
        resolve("node", env={"TICKFAN_HTTP": "nowhere"})
    with pytest.raises(ConfigError, match="TICKFAN_QUIET: expected true or false"):
        resolve("node", env={"TICKFAN_QUIET": "maybe"})
    with pytest.raises(ConfigError, match=r"key tif: invalid choice: 'gtd'"):
        resolve("trade", "alice", "buy", "AAPL", "1", "--config", toml(tmp_path, 'tif = "gtd"\n'))
    with pytest.raises(ConfigError, match="key flush-ms: expected a single value"):
        resolve("node", "--config", toml(tmp_path, "flush-ms = [1, 2]\n"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve("node", "--config", toml(tmp_path, "flush-ms = \n"))
    with pytest.raises(ConfigError, match="exclude each other"):
        resolve("market-maker", "--config", toml(tmp_path, 'quotes-url = "http://x"\nstatic-quotes = "A=1x1/2x1"\n'))
    # a flag beats the file's value of the other side of its group: it does not run beside it
    args, s = resolve("market-maker", "--quotes-url", "http://q:1", "--config",
                      toml(tmp_path, 'static-quotes = "A=1x1/2x1"\n'))
    assert (args.quotes_url, args.static_quotes, s["static-quotes"].source) == ("http://q:1", None, "default")


def test_unknown_keys_in_the_file_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'flush_msec' in \[node\]: tickfan node has no option"):
        resolve("node", "--config", toml(tmp_path, "[node]\nflush_msec = 5\n"))
    with pytest.raises(ConfigError, match="unknown key 'flushms': no tickfan command has an option --flushms"):
        resolve("node", "--config", toml(tmp_path, "flushms = 5\n"))
    with pytest.raises(ConfigError, match=r"table \[nodes\] names no tickfan command"):
        resolve("node", "--config", toml(tmp_path, "[nodes]\nflush-ms = 5\n"))
    # a key of another command's table is that command's business; a shared top-level key applies where it exists
    f = toml(tmp_path, "rate = 500\nflush-ms = 20\n[api]\nfee-bps = 3\n")
    args, _ = resolve("node", "--config", f)
    assert args.flush_ms == 20.0 and not hasattr(args, "rate")
    assert resolve("simulate", "--config", f)[0].rate == 500.0


def test_a_variable_that_names_no_option_of_the_command_is_ignored() -> None:
    env = {"TICKFAN_RATE": "not a number either", "TICKFAN_NO_SUCH_THING": "1", "TICKFAN_JWT_SECRET": "x" * 40,
           "TICKFAN_TEST_DB": "tickfan_x", "TICKFAN_FLUSH_MS": "25"}
    args, s = resolve("node", env=env)  # node has no --rate: the demo's simulator child does
    assert args.flush_ms == 25.0 and not any(x.source.startswith("env TICKFAN_RATE") for x in s.values())
    with pytest.raises(ConfigError, match="TICKFAN_RATE"):
        resolve("simulate", env=env)


def test_older_variables_keep_their_meaning_below_the_new_names() -> None:
    args, s = resolve("api", env={"TICKFAN_DATABASE_URLS": "postgresql:///a,postgresql:///b",
                                  "TICKFAN_REDIS_URL": "redis://r:1/0"})
    assert args.db == ["postgresql:///a", "postgresql:///b"] and s["db"].source == "env TICKFAN_DATABASE_URLS"
    assert args.trading_redis == "redis://r:1/0"
    args, s = resolve("api", env={"TICKFAN_DATABASE_URLS": "postgresql:///a", "TICKFAN_DB": "postgresql:///c"})
    assert args.db == ["postgresql:///c"] and s["db"].source == "env TICKFAN_DB"
    args, _ = resolve("watch", "AAPL", env={"TICKFAN_TLS_CA": "/ca.pem"})
    assert args.ca == "/ca.pem"


def test_renamed_options_keep_their_old_spelling_on_the_command_line(tmp_path: Path) -> None:
    args, _ = resolve("execute", "--redis", "redis://old:1/0", "--partitions", "0,1")
    assert (args.trading_redis, args.stream_partitions) == ("redis://old:1/0", "0,1")
    assert resolve("api", "--redis", "redis://old:2/0")[0].trading_redis == "redis://old:2/0"
    assert resolve("watch", "AAPL", "--url", "ws://h:1/v1/stream")[0].stream == "ws://h:1/v1/stream"
    assert str(resolve("replay", "f.itch", "--date", "2019-01-30")[0].session_date) == "2019-01-30"
    assert resolve("market-maker", "--tls-cert", "c.pem")[0].tls_cert == "c.pem"
    # in a file (or a variable) only the new name: an old one may mean something else elsewhere (--redis)
    with pytest.raises(ConfigError, match="old spelling of --trading-redis: write trading-redis"):
        resolve("api", "--config", toml(tmp_path, '[api]\nredis = "redis://x"\n'))
    _, s = resolve("api", env={"TICKFAN_REDIS": "redis://books:1/0"})  # the node's --redis: not the api's
    assert s["trading-redis"].source == "default"


def test_one_name_one_meaning_across_commands() -> None:
    """An option name shared by commands takes the same kind of value everywhere (execute's --partitions, a
    list of stream partitions, once shared the name of the node's partition count)."""
    kinds: dict[str, set[Any]] = {}
    for command in cli.COMMANDS:
        for name, action in options_of(cli.command_parser(command)[0]).items():
            kinds.setdefault(name, set()).add((action.type, action.nargs == 0, type(action).__name__))
    assert {n: k for n, k in kinds.items() if len(k) > 1} == {}
    assert env_name("flush-ms") == "TICKFAN_FLUSH_MS" and env_name("ws") == "TICKFAN_WS"


def test_a_new_flag_of_any_parser_is_covered_without_a_line_of_configuration(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brand-new-limit", type=int, default=3)
    args, s = effective(parser, [], command="node", environ={"TICKFAN_BRAND_NEW_LIMIT": "9"}, commands=cli.COMMANDS,
                        known_anywhere=cli.known_options)
    assert args.brand_new_limit == 9 and s["brand-new-limit"].source == "env TICKFAN_BRAND_NEW_LIMIT"


def test_help_shows_the_effective_defaults(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKFAN_FLUSH_MS", "12.5")
    with pytest.raises(SystemExit):
        cli.main(["node", "--help"])
    assert "(default 12.5)" in capsys.readouterr().out


def test_config_show_says_where_each_value_came_from_and_masks_secrets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    f = toml(tmp_path, f'[api]\nfee-bps = 3\nmigrate-db = ["{SECRET_DSN}"]\n')
    monkeypatch.setenv("TICKFAN_RATE_LIMIT", "50")
    monkeypatch.setenv("TICKFAN_SOMETHING_ELSE", "1")
    monkeypatch.setenv("TICKFAN_JWT_SECRET", "a-secret-that-must-not-be-printed-0123456789")
    assert cli.main(["config", "show", "api", "--config", f, "--db", "postgresql://app:s3cret@h/tickfan_0",
                     "--db", "host=h dbname=tickfan_1 password=kw-secret"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert rows["fee-bps"].split()[1:] == ["3", "file", f, "[api]"]
    assert rows["rate-limit"].split()[1:] == ["50", "env", "TICKFAN_RATE_LIMIT"]
    assert rows["db"].rstrip().endswith("flag") and rows["port"].rstrip().endswith("default")
    for secret in ("hunter2", "s3cret", "kw-secret", "a-secret-that-must-not"):
        assert secret not in out
    assert "postgresql://ops:****@db.internal:5432/tickfan_0" in rows["migrate-db"]
    assert "TICKFAN_JWT_SECRET=****" in out and "TICKFAN_SOMETHING_ELSE=1  (no option of this command: ignored)" in out


def test_config_show_without_a_command_lists_what_the_file_and_environment_change(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKFAN_SEED", "7")
    assert cli.main(["config", "show", "--config", toml(tmp_path, "[node]\nflush-ms = 5\n")]) == 0
    out = capsys.readouterr().out
    assert "[node]\n  flush-ms" in out and "[simulate]\n  seed" in out and "[market-maker]\n  seed" in out
    assert "[api]" not in out  # nothing set for it
    assert cli.main(["config", "show", "--config", toml(tmp_path, "[node]\nflush-msec = 5\n")]) == 2
    assert "unknown key 'flush-msec'" in capsys.readouterr().err


def test_a_command_refuses_to_run_on_a_bad_configuration(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKFAN_MAX_GAP", "lots")
    assert cli.main(["node"]) == 2
    assert capsys.readouterr().err.strip() == "tickfan node: TICKFAN_MAX_GAP: invalid int value: 'lots'"


def test_every_stream_limit_is_an_option_and_reaches_the_fan_out_workers_unchanged() -> None:
    from fanout.config import LIMITS
    from tickfan.node import stream_config, stream_limit_flags

    args, s = resolve("node", env={"TICKFAN_SLOW_CLIENT_TIMEOUT": "3", "TICKFAN_MESSAGE_BURST": "9",
                                   "TICKFAN_MAX_SYMBOLS": "500", "TICKFAN_WRITE_BUFFER_MAX": "1000000"})
    config = stream_config(args)
    assert (config.slow_client_timeout, config.burst, config.max_symbols, config.write_buffer_max) == (
        3.0, 9, 500, 1_000_000)
    dests = {a.dest for a in options_of(cli.command_parser("node")[0]).values()}
    assert set(LIMITS) <= dests, set(LIMITS) - dests  # every limit the node exports as a gauge is settable
    worker, _ = resolve("node", "--attach", "shm", *stream_limit_flags(args))  # a demo's extra fan-out worker
    assert stream_config(worker) == config
