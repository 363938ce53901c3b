"""``tickfan config show [COMMAND] [FLAGS...]``: the effective configuration and where each value came from.

With a command: each of its options, its value (secrets and passwords masked) and its source (flag, env VAR,
file PATH [table], default), as that command would run with these flags, this environment and this file; then the
``TICKFAN_*`` variables that are no option of it (read as such, or ignored). Without one: for every command, only
what the environment and the file change. Nothing is started or connected to.
"""

from __future__ import annotations

import argparse
import os
import sys

from tickfan.config import (
    ConfigError,
    config_path,
    effective,
    options_of,
    other_environment,
    render,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show"], help="show: print the effective configuration")
    parser.add_argument("command", nargs="?", default=None, metavar="COMMAND",
                        help="the command to show (default: every command, only what is not a default)")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="the TOML file to read (default $TICKFAN_CONFIG)")
    parser.add_argument("flags", nargs=argparse.REMAINDER, metavar="FLAGS",
                        help="the command's own flags, shown as it would take them")


def _show(name: str, argv: list[str], *, only_set: bool) -> list[str]:
    from tickfan.cli import COMMANDS, command_parser, known_options

    parser, _ = command_parser(name)
    for action in parser._actions:  # its positionals (a user, a file) are not configuration: need none here
        if not action.option_strings:
            action.nargs = "*" if action.nargs in ("+", "*") else "?"
            action.required, action.choices, action.default = False, None, None
    _, settings = effective(parser, argv, command=name, environ=os.environ, commands=COMMANDS,
                            known_anywhere=known_options)
    lines = render(settings, only_set=only_set)
    if not only_set:
        lines += other_environment(os.environ, options_of(parser))
    return lines


def main(args: argparse.Namespace) -> int:
    from tickfan.cli import COMMANDS, MissingExtra

    argv = [*args.flags, *(["--config", args.config] if args.config is not None else [])]
    if args.command is None:  # no command, no flags of one: only the file (argparse leaves it among the flags)
        named = config_path(argv, {})
        argv = ["--config", named] if named else []
    if args.command is not None and args.command not in COMMANDS or args.command == "config":
        print(f"tickfan config: no command {args.command!r} (commands: "
              f"{', '.join(c for c in COMMANDS if c != 'config')})", file=sys.stderr)
        return 2
    path = config_path(argv, os.environ)
    print(f"# config file: {path or 'none'} (flags > TICKFAN_* environment > file > defaults)")
    names = [args.command] if args.command else [c for c in COMMANDS if c != "config"]
    shown = 0
    try:
        for name in names:
            try:
                lines = _show(name, argv, only_set=not args.command)
            except MissingExtra as exc:
                print(f"[{name}]  ({exc})")
                continue
            if args.command or lines:
                print(f"[{name}]")
                print("\n".join(lines))
                shown += 1
    except ConfigError as exc:
        print(f"tickfan config: {exc}", file=sys.stderr)
        return 2
    if not shown:
        print("nothing set by TICKFAN_* variables or a file: every command runs on its defaults")
    return 0
