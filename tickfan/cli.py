"""The ``tickfan`` command: one subcommand per role, each with ``--help``.

Subcommand modules are imported only when chosen, so ``tickfan --help`` stays instant. Every subcommand's options
are also read from ``TICKFAN_<OPTION>`` variables and a TOML file (``--config``), through ``tickfan.config``;
every one has ``--log-level`` and ``--log-format`` (``tickfan.logs``).
A command whose optional dependencies are not installed names the extra to install instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version

# name -> (module, one-line help). Each module has add_arguments(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tickfan.demo", "run simulator, feed handler, books, snapshot HTTP and fan-out on localhost"),
    "node": ("tickfan.node", "run feed handler, books, snapshot HTTP and fan-out (no simulator)"),
    "ingest": ("tickfan.node", "the same as node: a feed handler with books, snapshot HTTP and fan-out"),
    "simulate": ("tickfan.simulate", "emit ITCH 5.0 in MoldUDP64 packets over UDP (an exchange simulator)"),
    "record": ("tickfan.capture_cli:record", "capture a live feed to a length-prefixed ITCH 5.0 file"),
    "replay": ("tickfan.capture_cli:replay", "play a capture (or a Nasdaq ITCH 5.0 file) back onto UDP"),
    "watch": ("tickfan.watch", "show live quotes from a fan-out node as a table in the terminal"),
    "migrate": ("tickfan.trading_cli:migrate", "create the ledger databases (one per shard), apply migrations"),
    "backup": ("tickfan.backup_cli:backup", "back up the ledger shards (pg_dump custom format) into a directory"),
    "restore": ("tickfan.backup_cli:restore", "restore a `tickfan backup` into fresh databases and check the ledger"),
    "api": ("tickfan.trading_cli:api", "run the order API (HTTP + JWT) and the outbox relay"),
    "token": ("tickfan.trading_cli:token", "mint a bearer token (JWT) for a user with $TICKFAN_JWT_SECRET, or the "
                                           "demo's development key when it is unset"),
    "deposit": ("tickfan.trading_cli:deposit", "journal a deposit into a user's cash (an operator's command)"),
    "split": ("tickfan.split_cli", "apply a stock split N:M to positions, cost basis and open orders (an operator's "
                                   "command; one journalled transaction per shard, idempotent)"),
    "trade": ("tickfan.trading_cli:trade", "place an order and print its updates as they arrive on the WebSocket"),
    "replace": ("tickfan.replace_cli", "replace an open limit order (new qty, limit, tif) and print the market "
                                       "maker's answer from the WebSocket"),
    "account": ("tickfan.account_cli", "show a user's account (settled and unsettled cash, buying power, positions), "
                                       "latest activities, and with --follow its live updates"),
    "execute": ("tickfan.trading_cli:execute", "run an execution worker: outbox streams -> FIX market maker -> ledger"),
    "market-maker": ("tickfan.market_maker", "run the FIX 4.4 market-maker simulator (fills at the live book)"),
    "venue": ("tickfan.venue_cli", "drive the simulated venue's day: premarket, open, close, rollover (the feed's "
                                   "system events, the market maker's crosses and expiries)"),
    "config": ("tickfan.config_cli", "show a command's effective configuration and where each value came from "
                                     "(flags, TICKFAN_* variables, --config file, defaults)"),
}

# The extra (pyproject's optional dependencies) each command needs beyond the base install (a client: watch,
# simulate, record, replay, config); said when one of its modules is missing.
EXTRAS = {"demo": "all", "node": "node", "ingest": "node", "migrate": "trading", "api": "trading",
          "token": "trading", "deposit": "trading", "split": "trading", "trade": "trading", "replace": "trading",
          "account": "trading", "execute": "trading", "market-maker": "trading", "venue": "trading"}
OUR_PACKAGES = frozenset({"vocab", "tickfan_proto", "ingest", "normalize", "snapshots", "fanout", "order_api",
                          "venue", "tickfan"})


# Servers: they refuse to start without a token key (TICKFAN_JWT_SECRET of at least 32 bytes, or the public keys
# of TICKFAN_JWT_JWKS). Every one of them checks, so a deployment missing the key fails at once, everywhere.
SERVERS = frozenset({"node", "ingest", "api", "execute", "market-maker"})
KEY_HELP = ("token keys (servers: node, ingest, api, execute, market-maker): TICKFAN_JWT_SECRET (HS256, at least 32 "
            "bytes) and/or TICKFAN_JWT_JWKS (RS256/ES256 public keys: a JWKS URL or file); TICKFAN_JWT_ISSUER and "
            "TICKFAN_JWT_AUDIENCE (default tickfan), TICKFAN_JWT_MAX_LIFETIME (seconds, default 86400). `tickfan "
            "demo` makes a development key once per machine for itself, `tickfan token` and `tickfan trade`.")


def check_token_key(name: str) -> str | None:
    """Why server command ``name`` must not start (no usable token key), as one line; None when it may."""
    from vocab.auth import KeyConfigError, default_verifier

    try:
        default_verifier()
    except KeyConfigError as e:
        return f"tickfan {name}: {e}"
    return None


def tickfan_version() -> str:
    try:
        return version("tickfan")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class MissingExtra(RuntimeError):
    """A command's optional dependency is not installed: the message names the extra that brings it."""


def missing_extra(name: str, exc: ModuleNotFoundError) -> MissingExtra | None:
    """The MissingExtra for ``exc`` raised while loading or running command ``name``; None when the missing module
    is one of ours (a broken checkout, not a missing extra)."""
    module = (exc.name or "").split(".")[0]
    if not module or module in OUR_PACKAGES:
        return None
    extra = EXTRAS.get(name)
    fix = f"pip install 'tickfan[{extra}]'" if extra else "reinstall tickfan"
    return MissingExtra(f"tickfan {name} needs the Python module {module!r}, which is not installed: {fix}")


def command_parser(name: str) -> tuple[argparse.ArgumentParser, Callable[[argparse.Namespace], int]]:
    """The parser of subcommand ``name`` (with ``--config``) and its main; MissingExtra when it cannot load."""
    # "module" offers add_arguments() and main(); "module:name" offers add_<name>_arguments() and <name>_main(),
    # for a module that holds several commands.
    module_name, _, prefix = COMMANDS[name][0].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise (missing_extra(name, exc) or exc) from None
    add = getattr(module, f"add_{prefix}_arguments" if prefix else "add_arguments")
    run = getattr(module, f"{prefix}_main" if prefix else "main")
    clients = ("demo", "token", "trade", "replace", "account")
    sub = argparse.ArgumentParser(prog=f"tickfan {name}", description=COMMANDS[name][1],
                                  epilog=KEY_HELP if name in SERVERS or name in clients else None)
    add(sub)
    if name != "config":
        from tickfan.config import add_config_argument
        from tickfan.logs import add_log_arguments

        add_config_argument(sub)
        add_log_arguments(sub)
    return sub, run


@cache
def known_options() -> frozenset[str]:
    """Every option name of every command that loads here (a config file's top-level keys must be one)."""
    from tickfan.config import options_of

    names: set[str] = set()
    for name in COMMANDS:
        try:
            names.update(options_of(command_parser(name)[0]))
        except (MissingExtra, ModuleNotFoundError):
            continue
    return frozenset(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickfan",
        description="Market-data fan-out: ITCH 5.0 over MoldUDP64 in, Protobuf over WebSockets out.",
        epilog=KEY_HELP,
    )
    parser.add_argument("--version", action="version", version=f"tickfan {tickfan_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help or a usage error and exits
        parser.print_help()
        return 2
    name = argv[0]
    try:
        sub, run = command_parser(name)
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 2
    if name == "config":
        args = sub.parse_args(argv[1:])
    else:
        from tickfan.config import ConfigError, effective

        try:
            args, _ = effective(sub, argv[1:], command=name, environ=os.environ, commands=COMMANDS,
                                known_anywhere=known_options)
        except ConfigError as exc:
            print(f"tickfan {name}: {exc}", file=sys.stderr)
            return 2
    if name != "config":
        from tickfan.logs import configure

        configure(name, args.log_level, args.log_format)
    if name in SERVERS:
        refused = check_token_key(name)
        if refused is not None:
            print(refused, file=sys.stderr)
            return 2
    try:
        return int(run(args))
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:  # a dependency imported only when the command runs
        problem = missing_extra(name, exc)
        if problem is None:
            raise
        print(problem, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
