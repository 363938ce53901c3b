"""The installable package: built as an operator builds it (an sdist, then the wheel from the sdist alone), it ships
what an installed tickfan needs, and the installed command works from outside the repository.

The wheel goes into a fresh venv with ``--no-deps`` (offline, in seconds); the dependencies come from this test's
own environment through a ``.pth`` line naming its site-packages (a plain path: no ``.pth`` file there, such as an
editable install's finder, is run, so nothing of the source tree is importable in the venv).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_until
from tests.order_api.conftest import SERVER, drop_databases

ROOT = Path(__file__).resolve().parents[2]
TYPED = ("vocab", "ingest", "normalize", "fanout", "snapshots", "order_api", "venue", "tickfan", "tickfan_proto")
MIGRATIONS = sorted(p.name for p in (ROOT / "order_api" / "migrations").glob("*.sql"))
WEB_FILES = sorted(str(p.relative_to(ROOT / "web" / "dist")) for p in (ROOT / "web" / "dist").rglob("*") if p.is_file())


BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "proto", "web/dist", *TYPED)


def source_files() -> list[str]:
    """The files of the working tree a clone would have: tracked, plus new ones not ignored (without git, e.g. an
    unpacked tarball: what the build reads, caches left out)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        found = [p for top in BUILD_INPUTS for p in ([ROOT / top] if (ROOT / top).is_file()
                                                     else (ROOT / top).rglob("*"))]
        return [str(p.relative_to(ROOT)) for p in found
                if (p.is_file() or p.is_symlink()) and "__pycache__" not in p.parts]
    return [f for f in out.split("\0") if f and os.path.lexists(ROOT / f)]


def build(hook: str, src: Path, out: Path) -> Path:
    """Run setuptools' PEP 517 hook ``hook`` in ``src`` (no build isolation: offline), returning the file made."""
    code = f"from setuptools import build_meta as b; print(b.{hook}({str(out)!r}))"
    r = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel): the sdist from a copy of the source tree (builds write into their source), the wheel from
    the unpacked sdist, so what the sdist lacks the wheel lacks too."""
    tmp = tmp_path_factory.mktemp("build")
    src, out = tmp / "src", tmp / "dist"
    for name in source_files():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = ROOT / name
        if origin.is_symlink():
            target.symlink_to(os.readlink(origin))
        else:
            shutil.copy2(origin, target)
    out.mkdir()
    sdist = build("build_sdist", src, out)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    return sdist, build("build_wheel", tmp / "unpacked" / sdist.name.removesuffix(".tar.gz"), out)


def test_the_sdist_and_the_wheel_ship_migrations_protocol_types_license_fix_notes_and_web_app(
        built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert z.read("tickfan_proto/stream.proto") == (ROOT / "proto" / "stream.proto").read_bytes()
        metadata = z.read("tickfan-0.1.0.dist-info/METADATA").decode()
    expected = {*(f"order_api/migrations/{m}" for m in MIGRATIONS), "order_api/FIX.md",
                *(f"{p}/py.typed" for p in TYPED), "tickfan-0.1.0.dist-info/licenses/LICENSE",
                *(f"tickfan/webapp/{f}" for f in WEB_FILES), "tickfan_proto/stream_pb2.pyi"}
    assert MIGRATIONS and "index.html" in WEB_FILES
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "pyproject.toml", "tickfan_proto/stream.proto", "order_api/FIX.md",
            *(f"order_api/migrations/{m}" for m in MIGRATIONS)} <= in_sdist
    # a client's install (no extra) pulls in neither numba nor asyncpg; the servers' extras do
    base = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert base and not any("numba" in line or "asyncpg" in line for line in base), base
    for extra in ("node", "trading", "all", "dev"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "License-Expression: MIT" in metadata


@pytest.fixture
def installed(built: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """(the venv's bin directory, an environment without the source tree) with the wheel installed."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "tickfan-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                        "--no-index", str(built[1])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not (
        k.startswith("TICKFAN_") and k not in ("TICKFAN_JWT_SECRET", "TICKFAN_TEST_DB"))}
    yield venv / "bin", env


def run(cmd: list[str | Path], env: dict[str, str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def drop_database(name: str) -> None:
    asyncio.run(drop_databases([f"{SERVER}/{name}"]))


@pytest.mark.timeout(300)  # a fresh install compiles its numba kernels on first use: slow on a loaded machine
def test_the_installed_command_migrates_a_fresh_database_and_runs_the_demo_outside_the_repository(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    where = run([bin_dir / "python", "-c", "import tickfan, order_api, tickfan_proto; "
                 "print(tickfan.__file__, order_api.__file__, tickfan_proto.__file__)"], env, cwd)
    assert where.returncode == 0, where.stderr
    assert all(str(bin_dir.parent) in p for p in where.stdout.split()), where.stdout  # none from the source tree
    version = run([bin_dir / "tickfan", "--version"], env, cwd)
    assert version.returncode == 0 and version.stdout.strip() == "tickfan 0.1.0", version

    db = f"{os.environ.get('TICKFAN_TEST_DB', 'tickfan_test')}_package"
    drop_database(db)
    try:
        migrated = run([bin_dir / "tickfan", "migrate", "--db", f"{SERVER}/{db}"], env, cwd)
        assert migrated.returncode == 0, migrated.stderr
        assert [line.split()[1] for line in migrated.stdout.splitlines() if line.startswith("applied")] == [
            m.removesuffix(".sql") for m in MIGRATIONS], migrated.stdout
    finally:
        drop_database(db)

    ports = {"http": free_port(), "ws": free_port(), "feed": free_port(socket.SOCK_DGRAM),
             "rewinder": free_port(socket.SOCK_DGRAM), "snapshot": free_port()}
    demo = subprocess.Popen(
        [str(bin_dir / "tickfan"), "demo", "--no-trading", "--duration", "240", "--symbols", "200", "--quiet",
         "--luld-every", "0", "--status-every", "0", *(a for n in ports for a in (f"--{n}", f"127.0.0.1:{ports[n]}"))],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{ports['http']}"
    try:
        def quoted() -> bool:
            assert demo.poll() is None, demo.communicate()
            try:
                quotes = httpx.get(f"{base}/v1/quotes?symbols=AAPL", timeout=2).json().get("quotes", [])
            except (httpx.HTTPError, ValueError):
                return False
            return any(q.get("bid_price") for q in quotes)

        wait_until(quoted, 180, "the installed demo serving an AAPL quote")
        page = httpx.get(f"{base}/", timeout=5)  # the web app, from the package's own copy of web/dist
        assert page.status_code == 200
        assert page.text == (ROOT / "web" / "dist" / "index.html").read_text()
    finally:
        demo.terminate()
        out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err[-2000:]
    assert "tickfan demo is up" in out


def test_migrate_fails_loudly_when_the_installed_package_has_no_migrations(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = installed
    located = run([bin_dir / "python", "-c", "import order_api.db as d; print(d.MIGRATIONS)"], env, tmp_path)
    for f in Path(located.stdout.strip()).glob("*.sql"):
        f.unlink()
    r = run([bin_dir / "tickfan", "migrate", "--db", f"{SERVER}/never_created_by_tickfan"], env, tmp_path)
    assert r.returncode != 0
    assert "no migrations found" in r.stderr and "up to date" not in r.stdout


def test_a_client_install_runs_watch_without_numba_or_asyncpg_and_a_server_names_its_extra() -> None:
    def without(modules: str, *argv: str) -> subprocess.CompletedProcess[str]:
        code = (f"import sys\nfor m in {modules.split()!r}: sys.modules[m] = None\n"
                f"from tickfan.cli import main\nraise SystemExit(main({list(argv)!r}))")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)

    watch = without("numba asyncpg", "watch", "--help")
    assert watch.returncode == 0 and "usage: tickfan watch" in watch.stdout, watch.stderr
    migrate = without("asyncpg", "migrate")
    assert migrate.returncode == 2 and "pip install 'tickfan[trading]'" in migrate.stderr, migrate.stderr
    assert "Traceback" not in migrate.stderr
    node = without("numba", "node", "--help")
    assert node.returncode == 2 and "pip install 'tickfan[node]'" in node.stderr, node.stderr
