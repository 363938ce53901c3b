"""Every option of every command from four places: flags > ``TICKFAN_*`` environment > TOML file > defaults.

Applied by ``tickfan.cli`` to each subcommand's argparse parser, so an option added to any command is covered
without a line here. The contract (README, Operations: "Install and configure"):

- An option's *name* is its first long spelling without the dashes (``flush-ms``). Later spellings are aliases:
  old names kept for scripts, read on the command line only (a file or variable using one is refused with the
  new name, since an old spelling may mean something else in another command).
- Environment: ``TICKFAN_`` + the name upper-cased, dashes as underscores (``TICKFAN_FLUSH_MS``). A variable
  that names no option of the command is ignored by it (the demo's children share one environment). A few
  variables older than this scheme are still read, below the new name (``LEGACY_ENV``). Repeatable options take
  comma-separated values; switches ``1/true/yes/on`` or ``0/false/no/off``.
- File: ``--config FILE`` (else ``$TICKFAN_CONFIG``), TOML. Top-level keys apply to every command that has the
  option; a ``[COMMAND]`` table (``[node]``, ``[market-maker]``) to that command only, over the top level. Keys
  are names with dashes or underscores; a repeatable option takes an array. Refused, naming the key: a table key
  that is not an option of its command, a top-level key no command has, a table that is no command.
- Values from the environment and the file go through the option's own type and choices (the same checks as
  a flag); a bad one is an error naming the variable or the key, and nothing runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "TICKFAN_"
CONFIG_ENV = "TICKFAN_CONFIG"
# variables that predate TICKFAN_<NAME>: still read for these options (the new name wins when both are set)
LEGACY_ENV = {
    "db": "TICKFAN_DATABASE_URLS",
    "migrate-db": "TICKFAN_MIGRATE_DATABASE_URLS",
    "trading-redis": "TICKFAN_REDIS_URL",
    "ca": "TICKFAN_TLS_CA",
}
# TICKFAN_* variables that are read as such, not as options (shown by `tickfan config show`, masked)
OTHER_ENV = {
    "TICKFAN_JWT_SECRET": "HS256 token key of every server",
    "TICKFAN_JWT_JWKS": "public keys (RS256/ES256) of every server",
    "TICKFAN_JWT_ISSUER": "tokens' issuer",
    "TICKFAN_JWT_AUDIENCE": "tokens' audience",
    "TICKFAN_JWT_MAX_LIFETIME": "longest token validity accepted",
    "TICKFAN_RESUME_SECRET": "resume tokens' key (nodes)",
    "TICKFAN_WS_TICKET_SECRET": "WebSocket tickets' key (APIs and nodes)",
    CONFIG_ENV: "configuration file (when no --config)",
}
NOT_SETTABLE = frozenset({"help", "version", "config"})  # dests neither a file nor the environment sets
SECRET_NAME = re.compile(r"secret|password|passphrase|token|jwks", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """A configuration value or file that cannot be used, said in one line naming where it came from."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One option's effective value and where it came from: ``flag``, ``env NAME``, ``file PATH`` or
    ``file PATH [command]``, ``default``."""

    name: str
    dest: str
    value: Any
    source: str


def option_name(action: argparse.Action) -> str | None:
    """The option's name (its first long spelling without dashes); None for positionals and help/version/config."""
    if action.dest in NOT_SETTABLE:
        return None
    longs = [s for s in action.option_strings if s.startswith("--")]
    return longs[0][2:] if longs else None


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper().replace("-", "_")


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """name -> action for every option a file or the environment may set."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        name = option_name(action)
        if name is not None:
            out[name] = action
    return out


def aliases_of(options: Mapping[str, argparse.Action]) -> dict[str, str]:
    """old spelling -> name, for the options' later long spellings."""
    return {s[2:]: name for name, a in options.items() for s in a.option_strings
            if s.startswith("--") and s[2:] != name}


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="read options from this TOML file (default $TICKFAN_CONFIG): top-level keys for every "
                             "command, [COMMAND] tables for one; flags win over TICKFAN_<OPTION> variables, which "
                             "win over the file. `tickfan config show COMMAND` prints the result")


def config_path(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The file named by ``--config`` in ``argv``, else by ``$TICKFAN_CONFIG``; None when neither."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(list(argv))
    return known.config or environ.get(CONFIG_ENV) or None


def load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: not valid TOML: {e}") from None


def _key(key: str) -> str:
    return key.replace("_", "-")


def file_values(doc: Mapping[str, Any], path: str, command: str, options: Mapping[str, argparse.Action], *,
                commands: Collection[str], known_anywhere: Callable[[], Collection[str]]) -> dict[str, tuple[Any, str]]:
    """name -> (raw value, source) that the file gives ``command``; ConfigError on an unknown key or table."""
    aliases = aliases_of(options)
    out: dict[str, tuple[Any, str]] = {}
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            if key not in commands:
                raise ConfigError(f"config file {path}: table [{key}] names no tickfan command "
                                  f"(commands: {', '.join(sorted(commands))})")
            if key == command:
                tables.append((key, value))
            continue
        name = _key(key)
        if name in options:
            out[name] = (value, f"file {path}")
        elif name in aliases:
            raise ConfigError(f"config file {path}: key {key!r} is the old spelling of --{aliases[name]} in "
                              f"tickfan {command}: write {aliases[name]}")
        elif name not in known_anywhere():
            raise ConfigError(f"config file {path}: unknown key {key!r}: no tickfan command has an option --{name}")
    for table, values in tables:
        for key, value in values.items():
            name = _key(key)
            if name in aliases:
                raise ConfigError(f"config file {path}: key {key!r} in [{table}] is the old spelling of "
                                  f"--{aliases[name]}: write {aliases[name]}")
            if name not in options:
                raise ConfigError(f"config file {path}: unknown key {key!r} in [{table}]: tickfan {command} has no "
                                  f"option --{name}")
            out[name] = (value, f"file {path} [{table}]")
    return out


def env_values(environ: Mapping[str, str], options: Mapping[str, argparse.Action]) -> dict[str, tuple[Any, str]]:
    """name -> (raw value, source) from ``TICKFAN_<NAME>`` (else a legacy variable) for the command's options."""
    out: dict[str, tuple[Any, str]] = {}
    for name in options:
        for var in (env_name(name), LEGACY_ENV.get(name)):
            if var is not None and var in environ:
                out[name] = (environ[var], f"env {var}")
                break
    return out


def _repeatable(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction | argparse._ExtendAction) or action.nargs in ("+", "*")


def _text(raw: Any, where: str) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float | dt.date | dt.time):
        return raw.isoformat() if isinstance(raw, dt.date | dt.time) else str(raw)
    raise ConfigError(f"{where}: expected a single value, got {type(raw).__name__} {raw!r}")


def _one(action: argparse.Action, text: str, where: str) -> Any:
    func: Callable[[str], Any] = action.type if callable(action.type) else str
    try:
        value = func(text)
    except argparse.ArgumentTypeError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: invalid {getattr(func, '__name__', 'value')} value: {text!r}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        raise ConfigError(f"{where}: invalid choice: {value!r} (choose from {choices})")
    return value


def convert(action: argparse.Action, raw: Any, where: str, default: Any) -> Any:
    """A raw value (an environment string, a TOML value) as the flag would have made it."""
    if action.nargs == 0:  # a switch: store_true, store_false, store_const
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            raw = raw.strip().lower() in _TRUE
        if not isinstance(raw, bool):
            raise ConfigError(f"{where}: expected true or false, got {raw!r}")
        return action.const if raw else default
    if _repeatable(action):
        if isinstance(raw, str) and where.startswith(ENV_PREFIX):
            items: list[Any] = [s.strip() for s in raw.split(",") if s.strip()]
        else:
            items = list(raw) if isinstance(raw, list) else [raw]
        return [_one(action, _text(item, where), where) for item in items]
    return _one(action, _text(raw, where), where)


def _label(name: str, source: str) -> str:
    """Where a value came from, for an error: ``TICKFAN_FLUSH_MS`` or ``config file F [node], key flush-ms``."""
    return source.removeprefix("env ") if source.startswith("env ") else f"config {source}, key {name}"


def effective(parser: argparse.ArgumentParser, argv: Sequence[str], *, command: str, environ: Mapping[str, str],
              commands: Collection[str], known_anywhere: Callable[[], Collection[str]],
              ) -> tuple[argparse.Namespace, dict[str, Setting]]:
    """Parse ``argv`` with the environment and the file under the flags: the namespace and each option's setting.

    ``--help`` shows the effective defaults. ConfigError for a bad value, key or file; argparse's usage error (it
    exits) for a bad flag."""
    options = options_of(parser)
    path = config_path(argv, environ)
    raw: dict[str, tuple[Any, str]] = {}
    if path is not None:
        raw.update(file_values(load_file(path), path, command, options, commands=commands,
                               known_anywhere=known_anywhere))
    raw.update(env_values(environ, options))
    values = {name: convert(options[name], value, _label(name, source), options[name].default)
              for name, (value, source) in raw.items()}
    for group in parser._mutually_exclusive_groups:
        both = [n for n in values if options[n] in group._group_actions]
        if len(both) > 1:
            raise ConfigError(f"--{both[0]} and --{both[1]} exclude each other: "
                              f"{raw[both[0]][1]} sets one, {raw[both[1]][1]} the other")
    saved = {name: a.default for name, a in options.items()}
    try:
        for name, value in values.items():
            # a repeatable option's default is appended to by its flags: keep it empty, fill it below
            options[name].default = None if _repeatable(options[name]) else value
        args = parser.parse_args(list(argv))
        for a in options.values():
            a.default = argparse.SUPPRESS
        given = set(vars(parser.parse_args(list(argv))))
    finally:
        for name, a in options.items():
            a.default = saved[name]
    # a flag beats a variable or a key of the other side of its mutually exclusive group too
    beaten = {o for g in parser._mutually_exclusive_groups if any(o.dest in given for o in g._group_actions)
              for o in g._group_actions}
    settings: dict[str, Setting] = {}
    for name, a in options.items():
        if a.dest in given:
            settings[name] = Setting(name, a.dest, getattr(args, a.dest), "flag")
            continue
        if name in values and a not in beaten:
            value, source = values[name], raw[name][1]
        elif name in values:  # beaten by a flag of its group: its own default, as argparse would have made it
            value, source = saved[name], "default"
            if isinstance(value, str) and not _repeatable(a):
                value = _one(a, value, f"the default of --{name}")
        else:
            value, source = getattr(args, a.dest), "default"
            if _repeatable(a) and value is None:
                value = saved[name]
        setattr(args, a.dest, value)
        settings[name] = Setting(name, a.dest, value, source)
    return args, settings


# ---------------------------------------------------------------- showing it


def mask(name: str, value: str) -> str:
    """A value fit to print: secrets by name hidden, passwords inside URLs and DSNs hidden."""
    if SECRET_NAME.search(name) and value not in ("", "-"):
        return "****"
    return _KEYWORD_PASSWORD.sub(r"\1****", _URL_PASSWORD.sub(r"\1****@", value))


def show_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int | None):
        host, port = value
        return f"{host}:{port if port is not None else '*'}"
    if isinstance(value, list | tuple):
        return ", ".join(show_value(v) for v in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def render(settings: Mapping[str, Setting], *, only_set: bool = False) -> list[str]:
    rows = [(s.name, mask(s.name, show_value(s.value)), s.source) for s in settings.values()
            if not only_set or s.source != "default"]
    width = max((len(n) for n, _, _ in rows), default=0) + 2
    vwidth = min(max((len(v) for _, v, _ in rows), default=0) + 2, 48)
    return [f"  {n:<{width}}{v:<{vwidth}} {src}" for n, v, src in rows]


def other_environment(environ: Mapping[str, str], options: Iterable[str]) -> list[str]:
    """Lines for the TICKFAN_* variables that are no option of the command: read as such, or ignored."""
    mine = {env_name(n) for n in options} | {LEGACY_ENV[n] for n in options if n in LEGACY_ENV}
    lines = []
    for var in sorted(v for v in environ if v.startswith(ENV_PREFIX) and v not in mine):
        what = OTHER_ENV.get(var)
        shown = mask(var, environ[var])
        lines.append(f"  {var}={shown}  " + (f"({what})" if what else "(no option of this command: ignored)"))
    return lines


__all__ = ["CONFIG_ENV", "LEGACY_ENV", "ConfigError", "Setting", "add_config_argument", "config_path", "effective",
           "env_name", "mask", "option_name", "options_of", "other_environment", "render", "show_value"]
