"""No server starts without a token key; the demo's development key is made once, for its owner only, and is what
`tickfan token` signs with when no secret is set."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tickfan import cli, devkey
from vocab import auth

SERVERS = ("node", "ingest", "api", "execute", "market-maker")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("TICKFAN_JWT_SECRET", raising=False)
    monkeypatch.delenv("TICKFAN_JWT_JWKS", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(auth, "_default", None)  # the process's verifier is built again from this environment
    return tmp_path


@pytest.mark.parametrize("command", SERVERS)
@pytest.mark.parametrize("secret", [None, "", "x"])
def test_every_server_command_refuses_to_start_without_a_key(command: str, secret: str | None, no_key: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    if secret is not None:
        monkeypatch.setenv("TICKFAN_JWT_SECRET", secret)
    assert cli.main([command]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"tickfan {command}: ") and "TICKFAN_JWT_SECRET" in err


def test_a_one_byte_secret_stops_the_real_command_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "TICKFAN_JWT_SECRET": "x", "XDG_STATE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "tickfan", "api", "--port", "1"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == ("tickfan api: TICKFAN_JWT_SECRET must be at least 32 bytes (it is 1); make one "
                                  "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")


def test_the_development_key_is_made_once_for_its_owner_only(no_key: Path) -> None:
    path = devkey.dev_key_path()
    assert path == no_key / "tickfan" / "dev-jwt-secret" and devkey.read_dev_key() is None
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(devkey.ensure_dev_key())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) >= 32  # concurrent makers agree on one key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert devkey.ensure_dev_key() == keys[0]
    assert [p.name for p in path.parent.iterdir()] == ["dev-jwt-secret"]  # no temporary file left behind
    path.chmod(0o644)
    with pytest.raises(devkey.DevKeyError, match="chmod 600"):
        devkey.read_dev_key()


def test_token_signs_with_the_development_key_only_when_no_secret_is_set(
        no_key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "alice"]) == 2
    assert "run `tickfan demo` once" in capsys.readouterr().err
    key = devkey.ensure_dev_key()
    assert cli.main(["token", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert auth.Verifier(secret=key).claims(token).user == "alice"
    os.environ["TICKFAN_JWT_SECRET"] = own = "an-operator-chosen-secret-of-32-bytes-or-more"
    assert cli.main(["token", "bob"]) == 0
    assert auth.Verifier(secret=own).claims(capsys.readouterr().out.strip()).user == "bob"


def test_help_names_the_key_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["api", "--help"])
    text = capsys.readouterr().out
    assert "TICKFAN_JWT_SECRET" in text and "TICKFAN_JWT_JWKS" in text
