"""Schema migrations of the ledger's shards: order_api/migrations/*.sql applied in name order, each once, each in
its own transaction, under an advisory lock (one migrator per shard at a time)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import asyncpg

MIGRATIONS = Path(__file__).with_name("migrations")


async def create_databases(dsns: Sequence[str]) -> list[str]:
    """Create each shard's database if it does not exist (through the server's ``postgres`` database, reached with
    the same parameters: user, TLS settings)."""
    created = []
    for dsn in dsns:
        path, sep, query = dsn.partition("?")  # the query may hold paths (sslrootcert=/...)
        base, _, name = path.rpartition("/")
        conn = await asyncpg.connect(f"{base}/postgres{sep}{query}")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
        finally:
            await conn.close()
    return created


class MigrationsPending(RuntimeError):
    """The schema is behind and this role may not migrate it (the services' least-privilege role)."""


class MigrationsMissing(RuntimeError):
    """No migration files where the package keeps them: an incomplete install, never "up to date"."""


def migration_files(directory: Path = MIGRATIONS) -> list[Path]:
    """The migrations in order; MigrationsMissing when there are none (nothing is touched then)."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise MigrationsMissing(f"no migrations found in {directory}: this installation of tickfan is incomplete "
                                "(the package data order_api/migrations/*.sql is missing); reinstall it")
    return files


async def migrate(dsns: Sequence[str]) -> list[tuple[str, str]]:
    """Apply every migration not yet applied, each in its own transaction, on every shard.

    A shard already up to date is only read, so a role without DDL rights (``tickfan_app``, migration 007) may
    call this at start; if migrations are pending it raises :class:`MigrationsPending` naming the fix."""
    files = migration_files()
    await create_databases(dsns)
    applied = []
    for dsn in dsns:
        conn = await asyncpg.connect(dsn)
        try:
            # One migrator per shard at a time (the demo and a test run may start together).
            await conn.execute("SELECT pg_advisory_lock(7470001)")
            done: set[str] = set()
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
                done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            pending = [f for f in files if f.stem not in done]
            if not pending:
                continue
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, "
                                   "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                for f in pending:
                    async with conn.transaction():
                        await conn.execute(f.read_text())
                        await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", f.stem)
                    applied.append((dsn, f.stem))
            except asyncpg.InsufficientPrivilegeError as e:
                raise MigrationsPending(
                    f"{len(pending)} migration(s) pending on {_without_password(dsn)} ({pending[0].stem}...) and this "
                    f"role may not apply them ({e}): run `tickfan migrate` with the owner's DSN, or pass "
                    "--migrate-db") from e
        finally:
            await conn.close()
    return applied


def _without_password(dsn: str) -> str:
    """A DSN fit for a message: any password replaced."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return dsn
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
