"""The ``tickfan`` command: one subcommand per role, each with ``--help``.

Subcommand modules are imported only when chosen, so ``tickfan --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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
    "trade": ("tickfan.trading_cli:trade", "place an order and print its updates as they arrive on the WebSocket"),
    "execute": ("tickfan.trading_cli:execute", "run an execution worker: outbox streams -> FIX market maker -> ledger"),
    "market-maker": ("tickfan.market_maker", "run the FIX 4.4 market-maker simulator (fills at the live book)"),
}


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickfan",
        description="Market-data fan-out: ITCH 5.0 over MoldUDP64 in, Protobuf over WebSockets out.",
        epilog=KEY_HELP,
    )
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
    # "module" offers add_arguments() and main(); "module:name" offers add_<name>_arguments() and <name>_main(),
    # for a module that holds several commands.
    module_name, _, prefix = COMMANDS[name][0].partition(":")
    module = importlib.import_module(module_name)
    add = getattr(module, f"add_{prefix}_arguments" if prefix else "add_arguments")
    run = getattr(module, f"{prefix}_main" if prefix else "main")
    sub = argparse.ArgumentParser(prog=f"tickfan {name}", description=COMMANDS[name][1],
                                  epilog=KEY_HELP if name in SERVERS or name in ("demo", "token", "trade") else None)
    add(sub)
    args = sub.parse_args(argv[1:])
    if name in SERVERS:
        refused = check_token_key(name)
        if refused is not None:
            print(refused, file=sys.stderr)
            return 2
    try:
        return int(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
