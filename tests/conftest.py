"""What every test may use: condition waits, free ports, feed builders, and the hypothesis profile.

Import the plain helpers (``from tests.conftest import eventually, free_port, directory``); fixtures are found by
pytest as usual. Tests never decide pass/fail by a fixed sleep: they wait for a condition with a deadline
generous enough for a loaded 2-core machine, and fail with what they last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ingest.messages import StockDirectory

# Servers refuse to start without a token key: the whole session (and every process it starts) has one of its own.
# Tests that need another key, or none, pass it explicitly. The development key's state directory is ours too, so
# no test reads or makes the one of the machine's user.
TEST_JWT_SECRET = "tickfan-tests-only-hs256-signing-key-0123456789"
os.environ["TICKFAN_JWT_SECRET"] = TEST_JWT_SECRET
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="tickfan-state-")

# No deadlines anywhere: a shared, loaded machine makes an example's run time noise, not a test result.
settings.register_profile("tickfan", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tickfan")

WAIT = 30.0  # seconds a condition may take on a loaded machine before a test fails


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now (TCP by default; ``socket.SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Any], timeout: float = WAIT, what: str = "",
                     state: Callable[[], Any] | None = None, interval: float = 0.02) -> None:
    """Wait until ``check()`` (plain or awaitable) is true; else fail naming ``what`` and showing ``state()``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            shown = state() if state else None
            if inspect.isawaitable(shown):
                shown = await shown
            raise AssertionError(f"not reached within {timeout:.0f} s: {what}" + (f"; {shown}" if state else ""))
        await asyncio.sleep(interval)


def wait_until(check: Callable[[], Any], timeout: float = WAIT, what: str = "",
               state: Callable[[], Any] | None = None, interval: float = 0.05) -> None:
    """``eventually`` for synchronous tests (subprocesses, blocking clients)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout:.0f} s: {what}" + (f"; {state()}" if state else ""))
        time.sleep(interval)


def directory(locate: int, stock: str, *, timestamp: int = 1, round_lot: int = 100) -> StockDirectory:
    """A Stock Directory message for a plain Nasdaq common stock."""
    return StockDirectory(locate, 0, timestamp, stock, "Q", "N", round_lot, "N", "C", "Z ", "P", "N", "N", "1", "N",
                          0, "N")


class PrivateRedis:
    """A redis-server of our own on a free port (never the shared one): tests stop and restart it at will.

    With ``certs`` it listens for TLS only (``--port 0 --tls-port``), with their server certificate, and
    ``client_auth`` requires client certificates of their CA; ``acl`` is an ACL file's text (``aclfile``)."""

    def __init__(self, port: int | None = None, *, certs: Certs | None = None, client_auth: bool = False,
                 acl: str | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tickfan-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.certs, self.client_auth, self.acl = certs, client_auth, acl
        self._client_cert = certs.client("redis-probe") if certs is not None and client_auth else None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def tls_url(self, user: str, password: str, client: tuple[str, str] | None = None) -> str:
        """A ``rediss://user:password@...`` URL: the server verified against our CA, ``client`` (certificate,
        key) presented for mutual TLS; redis-py reads the file settings from the query."""
        assert self.certs is not None
        query = f"ssl_ca_certs={self.certs.ca}"
        if client is not None:
            query += f"&ssl_certfile={client[0]}&ssl_keyfile={client[1]}"
        return f"rediss://{user}:{password}@127.0.0.1:{self.port}/0?{query}"

    def _pong(self) -> bool:
        """Up when it answers a PING (with PONG, or with NOAUTH when the default user is off)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                s: socket.socket = raw
                if self.certs is not None:
                    import ssl

                    ctx = ssl.create_default_context(cafile=self.certs.ca)
                    if self._client_cert is not None:
                        ctx.load_cert_chain(*self._client_cert)
                    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def start(self) -> PrivateRedis:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [exe, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        if self.certs is None:
            argv += ["--port", str(self.port)]
        else:
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.certs.server_cert,
                     "--tls-key-file", self.certs.server_key, "--tls-ca-cert-file", self.certs.ca,
                     "--tls-auth-clients", "yes" if self.client_auth else "no"]
        if self.acl is not None:
            path = os.path.join(self.dir, "users.acl")
            with open(path, "w") as f:
                f.write(self.acl)
            argv += ["--aclfile", path]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._pong, 10, f"redis-server answering on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cluster_base_port() -> int:
    """A base port whose six client ports and six bus ports (port + 10000) are all free right now."""
    import random

    for _ in range(200):
        base = random.randrange(20_000, 45_000)
        try:
            for port in [*range(base, base + 6), *range(base + 10_000, base + 10_006)]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free range of ports for a Redis Cluster")


class LocalCluster:
    """A real Redis Cluster (three masters, three replicas) started by ``scripts/redis-cluster.sh`` on free ports
    in a directory of its own; ``kill_master`` kills one for failover tests. Stopped and thrown away on exit."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tickfan-cluster-")
        self.base = _cluster_base_port()
        self.ports = list(range(self.base, self.base + 6))

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def _script(self, *args: str) -> str:
        out = subprocess.run([os.path.join(ROOT, "scripts", "redis-cluster.sh"), *args], capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cluster.sh {' '.join(args)}: {out.stderr or out.stdout}")
        return out.stdout

    def cli(self, port: int, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                              timeout=10).stdout

    def masters(self) -> dict[int, str]:
        """Port -> slot ranges of every master that answers."""
        for port in self.ports:
            out = self.cli(port, "cluster", "nodes")
            if out.strip():
                break
        found: dict[int, str] = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 8 and "master" in fields[2] and "fail" not in fields[2]:
                found[int(fields[1].split("@")[0].rsplit(":", 1)[1])] = " ".join(fields[8:])
        return found

    def kill_master(self, port: int | None = None) -> int:
        """SIGKILL a master (the first by port unless named); returns its port."""
        port = port if port is not None else min(self.masters())
        with open(os.path.join(self.dir, str(port), "redis.pid")) as f:
            os.kill(int(f.read().strip()), 9)
        return port

    def start(self) -> LocalCluster:
        self._script("start", self.dir, str(self.base))
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._script("stop", self.dir)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster of the test's own (about 2 s to start): kill its nodes freely."""
    with LocalCluster() as cluster:
        yield cluster


class Certs:
    """Certificates made by ``trustme`` in a directory of their own: a CA, a server certificate for 127.0.0.1 and
    localhost, client certificates by CN (``client(cn)``), and a second, unrelated CA (``stranger``). Paths are
    PEM files; ``*.key`` files are readable only by their owner (PostgreSQL insists)."""

    def __init__(self) -> None:
        import trustme

        self.dir = tempfile.mkdtemp(prefix="tickfan-certs-")
        os.chmod(self.dir, 0o755)  # a private PostgreSQL (another OS user) reads its copy from here
        self._ca = trustme.CA()
        self._stranger = trustme.CA()
        self.ca = self._write("ca.pem", self._ca.cert_pem.bytes())
        self.stranger_ca = self._write("stranger-ca.pem", self._stranger.cert_pem.bytes())
        self.server_cert, self.server_key = self._issue(self._ca, "server", "127.0.0.1", "localhost")

    def _write(self, name: str, data: bytes, mode: int = 0o644) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def _issue(self, ca: Any, name: str, *identities: str, common_name: str | None = None) -> tuple[str, str]:
        leaf = ca.issue_cert(*identities, common_name=common_name)
        cert = self._write(f"{name}.pem", b"".join(p.bytes() for p in leaf.cert_chain_pems))
        key = self._write(f"{name}.key", leaf.private_key_pem.bytes(), 0o600)
        return cert, key

    def client(self, cn: str, *, stranger: bool = False) -> tuple[str, str]:
        """(certificate, key) of a client certificate whose subject CN is ``cn``, signed by our CA (or the
        stranger's)."""
        return self._issue(self._stranger if stranger else self._ca, f"client-{cn}-{int(stranger)}", f"{cn}.example",
                           common_name=cn)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def certs() -> Iterator[Certs]:
    made = Certs()
    yield made
    made.close()


class PrivatePostgres:
    """A PostgreSQL server of our own (never the machine's): ``initdb`` and ``pg_ctl`` run as the ``postgres`` OS user
    (we may be root, which PostgreSQL refuses to run as) in a temporary directory, on a free port of 127.0.0.1.

    TCP clients must use TLS (``hostssl``; plain ``host`` lines reject) with the server certificate of ``certs``:
    the superuser ``postgres`` is trusted over TLS (a test server), every other role needs its password
    (scram-sha-256). ``dsn(...)`` builds ``sslmode=verify-full`` DSNs; ``stop()``/``start()`` at will."""

    def __init__(self, certs: Certs, port: int | None = None) -> None:
        self.certs = certs
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tickfan-pg-")
        self.data = os.path.join(self.dir, "data")
        self._initialised = False
        self.running = False
        self.passwords: dict[str, str] = {}  # login roles made by ``ledger_dsns``

    def _as_postgres(self, *argv: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = ""
            with contextlib.suppress(OSError):
                with open(os.path.join(self.dir, "server.log")) as f:
                    log = f.read()[-2000:]
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr or done.stdout}\n{log}")

    def _initdb(self) -> None:
        import pwd

        owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._as_postgres("initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8", "--no-sync",
                          "--auth-local=trust", "--auth-host=reject")
        for name, source in (("server.crt", self.certs.server_cert), ("server.key", self.certs.server_key)):
            target = os.path.join(self.data, name)
            shutil.copyfile(source, target)
            os.chown(target, owner.pw_uid, owner.pw_gid)
            os.chmod(target, 0o600)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
                       "shared_buffers = 16MB\npassword_encryption = 'scram-sha-256'\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as hba:
            hba.write("local all all trust\n"
                      "hostssl all postgres 127.0.0.1/32 trust\n"
                      "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                      "host all all 127.0.0.1/32 reject\n")
        self._initialised = True

    def start(self) -> PrivatePostgres:
        if not self._initialised:
            self._initdb()
        self._as_postgres("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "120",
                          "start")
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._as_postgres("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False

    def dsn(self, database: str = "postgres", user: str = "postgres", password: str | None = None,
            ca: str | None = None) -> str:
        """A ``sslmode=verify-full`` DSN: the server's certificate checked against ``ca`` (default: our CA) and
        for the host name 127.0.0.1."""
        who = f"{user}:{password}" if password else user
        return (f"postgresql://{who}@127.0.0.1:{self.port}/{database}"
                f"?sslmode=verify-full&sslrootcert={ca or self.certs.ca}")

    async def ledger_dsns(self, databases: Sequence[str], role: str = "tickfan_svc") -> list[str]:
        """Ledger shards for the services: migrated by the superuser (the only use of it), and a login role in
        ``tickfan_app`` (migration 007) with a random password; returns that role's verify-full DSNs."""
        import asyncpg

        from order_api.db import migrate

        await migrate([self.dsn(db) for db in databases])
        if role not in self.passwords:
            password = secrets.token_hex(16)
            conn = await asyncpg.connect(self.dsn())
            try:
                await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE tickfan_app")
            finally:
                await conn.close()
            self.passwords[role] = password
        return [self.dsn(db, role, self.passwords[role]) for db in databases]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres(certs: Certs) -> Iterator[PrivatePostgres]:
    """One private PostgreSQL for the whole run, started on first use (initdb takes a few seconds) and removed at
    the end. A test that stops it starts it again before it ends."""
    server = PrivatePostgres(certs)
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]
