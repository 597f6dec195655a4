"""What a run records about where it ran: Python, platform, host, argv and the git commit."""

from __future__ import annotations

import functools
import platform
import socket
import sys
from pathlib import Path
from typing import Any


@functools.cache
def static_environment() -> dict[str, Any]:
    """What every run of this process records (computed once): Python, platform, host, git."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": sys.argv[:8],
    }
    git_head = git_commit(Path.cwd())
    if git_head:
        env["git_commit"] = git_head
    return env


def git_commit(start: Path) -> str | None:
    """The commit checked out in the git work tree around ``start``, read from ``.git``."""
    for folder in (start, *start.parents):
        head = folder / ".git" / "HEAD"
        if head.is_file():
            try:
                ref = head.read_text().strip()
                if not ref.startswith("ref: "):
                    return ref
                target = folder / ".git" / ref[5:]
                if target.is_file():
                    return target.read_text().strip()
                packed = folder / ".git" / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref[5:]):
                            return line.split(" ", 1)[0]
            except OSError:
                return None
            return None
    return None
