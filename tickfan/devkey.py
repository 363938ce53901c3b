"""The development signing key: random, made once per machine by ``tickfan demo``, readable only by its owner.

Nothing in the source is a key. ``tickfan demo`` (when ``TICKFAN_JWT_SECRET`` is not set) creates
``$XDG_STATE_HOME/tickfan/dev-jwt-secret`` (``~/.local/state/tickfan/dev-jwt-secret`` by default; mode 0600,
created atomically so two demos starting together agree on one key) and puts it in its own environment, which
its child processes inherit. ``tickfan token`` and ``tickfan trade`` read the same file when no secret is set,
so the README's demo commands work unchanged. Servers never fall back to it: they need a configured key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from vocab.auth import SECRET_ENV, Verifier, check_secret, new_secret

FILE_NAME = "dev-jwt-secret"


class DevKeyError(RuntimeError):
    pass


def dev_key_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "tickfan" / FILE_NAME


def read_dev_key(path: Path | None = None) -> str | None:
    """The development key, or None when there is none yet; refuses a file others could read or write."""
    path = path or dev_key_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DevKeyError(f"cannot read the development key {path}: {e}") from e
    with os.fdopen(fd, encoding="ascii") as f:
        info = os.fstat(f.fileno())
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise DevKeyError(f"the development key {path} must belong to you and be readable by you only "
                              f"(chmod 600 {path})")
        key = f.read().strip()
    try:
        check_secret(key, str(path))
    except ValueError as e:
        raise DevKeyError(str(e)) from e
    return key


def ensure_dev_key(path: Path | None = None) -> str:
    """The development key, made now if there is none (mode 0600 from the start, published by a hard link so a
    concurrent maker's key wins and both use it)."""
    path = path or dev_key_path()
    existing = read_dev_key(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")  # threads of one process too
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(new_secret() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: fails if another process made the key first
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    key = read_dev_key(path)
    if key is None:
        raise DevKeyError(f"cannot create the development key {path}")
    return key


def use_dev_key(*, create: bool) -> Path | None:
    """Without ``TICKFAN_JWT_SECRET``, put the development key into this process's environment (children
    inherit it); ``create`` it if needed (the demo) or only read it (token, trade). Returns its path when used."""
    if os.environ.get(SECRET_ENV):
        return None
    path = dev_key_path()
    key = ensure_dev_key(path) if create else read_dev_key(path)
    if key is None:
        raise DevKeyError(f"{SECRET_ENV} is not set and there is no development key at {path} yet: run "
                          f"`tickfan demo` once on this machine, or set {SECRET_ENV} to the servers' secret")
    os.environ[SECRET_ENV] = key
    return path


def signing_with_dev_key(verifier: Verifier, path: Path | None = None) -> str | None:
    """The development key when ``verifier`` checks tokens with it alone (no public keys): what ``POST
    /v1/dev/token`` needs to exist. None with any other secret, with public keys, or without a readable key."""
    if verifier.jwks is not None or verifier.secret is None:
        return None
    try:
        key = read_dev_key(path)
    except DevKeyError:
        return None
    return key if key is not None and key.encode() == verifier.secret else None
