"""``chachaml serve``'s process set-up: enough open files for every stream it holds."""

from __future__ import annotations

import resource

from chachaml.server.app import raise_open_file_limit


def test_serve_lifts_its_soft_open_file_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256 if hard == resource.RLIM_INFINITY else min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # as a default of 1,024 would
    try:
        lifted = raise_open_file_limit()
        assert lifted == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert lifted == (hard if hard != resource.RLIM_INFINITY else 65_536)
        assert raise_open_file_limit() == lifted  # already there: unchanged
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
