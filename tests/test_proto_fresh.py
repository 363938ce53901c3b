"""The committed tickfan_proto/ modules must be exactly what protoc makes of proto/*.proto today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_matches_proto_sources(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "proto"),
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", str(ROOT / "proto" / "stream.proto")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    for name in ("stream_pb2.py", "stream_pb2.pyi"):
        fresh = (tmp_path / name).read_text()
        committed = (ROOT / "tickfan_proto" / name).read_text()
        assert committed == fresh, f"tickfan_proto/{name} is stale: run `make proto` and commit"
