"""Process limits a server needs: one open file per WebSocket connection."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("tickfan")
NR_OPEN = "/proc/sys/fs/nr_open"


def raise_open_files(wanted: int | None = None) -> int:
    """Raise the open-files soft limit to the hard limit, and the hard limit to ``wanted`` where the process
    may (root, or CAP_SYS_RESOURCE; capped at the kernel's ``fs.nr_open``). Returns the soft limit now in force.

    A fan-out node holds a file per client: left at a login shell's soft limit (often 1,024 or 20,000) it
    refuses connections long before memory or CPU run out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted is not None and wanted > hard:
        try:
            with open(NR_OPEN) as f:
                wanted = min(wanted, int(f.read()))
        except (OSError, ValueError):
            pass
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (OSError, ValueError):
            log.info("open-files hard limit stays %d (raising it needs privilege)", hard)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
