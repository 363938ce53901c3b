"""``tickfan backup`` and ``tickfan restore``: the ledger shards to and from a directory of pg_dump archives.

A backup is a directory: one PostgreSQL custom-format archive per shard (``shard-0.dump``, ...), in shard order,
and ``manifest.json`` (the format, when, the shard count, each archive's SHA-256 and schema migrations). Users
live on one shard each and money never moves between shards, so each shard's archive (one consistent snapshot,
as pg_dump takes) is a whole ledger for its users; ``Ledger.check()`` holds on a restore of any backup.

Restore goes into fresh databases only (created when missing; one that already holds tables is refused, nothing
changed): the archives are checked against the manifest, the group role the schema grants to (``tickfan_app``)
is made if the server lacks it, each archive is restored in one transaction (all or nothing), and the ledger's
invariants are checked on the result. Passwords travel in ``PGPASSWORD``, never on a command line.

Point-in-time recovery is PostgreSQL's own (README "Backups"): a base backup plus archived WAL; these archives
are the logical, portable copy beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tickfan.order_client import run as _run
from tickfan.trading_cli import add_db, dsns_of

FORMAT = "tickfan-ledger-backup/1"
MANIFEST = "manifest.json"
# the group role the schema's grants name (migration 007); cluster-wide, so a fresh server may lack it
APP_ROLE = "tickfan_app"


class BackupError(Exception):
    """A backup or restore that cannot go on: said in one line, nothing changed."""


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries the password to pg_dump/pg_restore."""
    parts = urlsplit(dsn)
    env = {**os.environ}
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = parts.password
    netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
    return urlunsplit(parts._replace(netloc=netloc)), env


def shown(dsn: str) -> str:
    return libpq_target(dsn)[0]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found: install PostgreSQL's client tools (Debian: postgresql-client)")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def _schema_versions(dsn: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return []
        return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()


async def backup(dsns: Sequence[str], out: Path) -> dict[str, object]:
    """Dump every shard into ``out`` (a new or empty directory) and write the manifest; returns it."""
    pg_dump = _tool("pg_dump")
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: give a new directory for each backup")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for shard, dsn in enumerate(dsns):
        versions = await _schema_versions(dsn)
        if not versions:
            raise BackupError(f"shard {shard} ({shown(dsn)}) has no ledger schema: nothing to back up")
        target, env = libpq_target(dsn)
        archive = out / f"shard-{shard}.dump"
        done = subprocess.run([pg_dump, "--format=custom", "--no-owner", f"--file={archive}", f"--dbname={target}"],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump of shard {shard} ({target}) failed: {done.stderr.strip()}")
        files.append({"shard": shard, "file": archive.name, "sha256": _sha256(archive), "source": target,
                      "bytes": archive.stat().st_size, "schema_versions": versions})
    manifest: dict[str, object] = {"format": FORMAT, "created": dt.datetime.now(dt.UTC).isoformat(),
                                   "shards": len(dsns), "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(source: Path, shards: int) -> list[Path]:
    """The archives of the backup in ``source``, in shard order, checked against its manifest."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise BackupError(f"{source}: no readable {MANIFEST} ({e})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: not a tickfan ledger backup (format {manifest.get('format')!r})")
    if manifest.get("shards") != shards:
        raise BackupError(f"{source} holds {manifest.get('shards')} shard(s) but {shards} target DSN(s) were "
                          "given: restore into as many shards as were backed up (users are placed by shard count)")
    archives = []
    for entry in sorted(manifest["files"], key=lambda f: int(f["shard"])):
        archive = source / str(entry["file"])
        if not archive.is_file() or _sha256(archive) != entry["sha256"]:
            raise BackupError(f"{archive}: missing or changed since the backup (SHA-256 differs from the manifest)")
        archives.append(archive)
    return archives


async def _fresh_target(dsn: str) -> None:
    """Create the database if missing, refuse one that holds tables, and make the schema's group role."""
    import asyncpg

    from order_api.db import create_databases

    await create_databases([dsn])
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        if tables:
            raise BackupError(f"{shown(dsn)} already holds {tables} table(s): restore into a fresh database "
                              "(drop it, or name another)")
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
            try:
                await conn.execute(f"CREATE ROLE {APP_ROLE} NOLOGIN")
            except asyncpg.DuplicateObjectError:
                pass  # made meanwhile for another shard on this server
    finally:
        await conn.close()


async def restore(source: Path, dsns: Sequence[str]) -> list[str]:
    """Restore the backup in ``source`` into fresh databases ``dsns``; returns ``Ledger.check()``'s problems."""
    from order_api.db import Ledger

    pg_restore = _tool("pg_restore")
    archives = read_manifest(source, len(dsns))
    for dsn in dsns:
        await _fresh_target(dsn)
    for shard, (archive, dsn) in enumerate(zip(archives, dsns, strict=True)):
        target, env = libpq_target(dsn)
        done = subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "--single-transaction",
                               f"--dbname={target}", str(archive)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_restore of shard {shard} into {target} failed (rolled back): "
                              f"{done.stderr.strip()}")
    ledger = await Ledger.connect(list(dsns), max_size=2)
    try:
        return await ledger.check()
    finally:
        await ledger.close()


# ---------------------------------------------------------------- commands

PITR = ("For point-in-time recovery run PostgreSQL with WAL archiving (archive_mode=on, archive_command) and take "
        "base backups (pg_basebackup); these archives are the logical copy beside them. See README, Backups.")


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = PITR
    parser.add_argument("out", type=Path, metavar="DIR",
                        help="a new (or empty) directory: shard-N.dump (pg_dump custom format) and manifest.json")
    add_db(parser)


def backup_main(args: argparse.Namespace) -> int:
    async def go() -> int:
        try:
            manifest = await backup(dsns_of(args), args.out)
        except BackupError as e:
            print(f"tickfan backup: {e}", file=sys.stderr)
            return 1
        print(f"backed up {manifest['shards']} shard(s) into {args.out}", flush=True)
        return 0
    return _run(go())


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = PITR
    parser.add_argument("source", type=Path, metavar="DIR", help="a directory `tickfan backup` wrote")
    add_db(parser)


def restore_main(args: argparse.Namespace) -> int:
    async def go() -> int:
        dsns = dsns_of(args)
        try:
            problems = await restore(args.source, dsns)
        except BackupError as e:
            print(f"tickfan restore: {e}", file=sys.stderr)
            return 1
        if problems:
            print(f"tickfan restore: restored, but the ledger check found {len(problems)} problem(s):",
                  file=sys.stderr)
            for p in problems[:20]:
                print(f"  {p}", file=sys.stderr)
            return 1
        print(f"restored {len(dsns)} shard(s) from {args.source}; ledger check: clean", flush=True)
        return 0
    return _run(go())
