"""The open-files limit a fan-out node raises for itself (in a child process: limits are per process)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import resource
from vocab.limits import raise_open_files
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
got = raise_open_files()
assert got == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[0], (got, hard)
more = raise_open_files(hard + 1000)
now = resource.getrlimit(resource.RLIMIT_NOFILE)
# privileged: raised past the old hard limit; unprivileged: the old hard limit stays, and is what is returned
assert more == now[0] and now[0] in (hard, min(hard + 1000, int(open('/proc/sys/fs/nr_open').read()))), now
print("ok", hard, more)
"""


def test_the_soft_limit_rises_to_the_hard_one_and_past_it_where_permitted() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
