"""A pipeline whose process is killed reads as killed, with its running step, and resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import Step, pipeline, pipelines, resume_pipeline
from tests.support.waiting import wait_for

T = TypeVar("T")
WAIT = 10


def poll(probe: Callable[[], T]) -> T:
    """``probe``'s first truthy answer (bounded by ``WAIT`` seconds)."""
    return wait_for(probe, WAIT)


SCRIPT = """
import threading
import chachaml as ml
from chachaml.client.pipelines.pipeline import Step

def first(ctx):
    return {"rows": 3}

def hang(ctx):
    threading.Event().wait(60)

ml.run_pipeline("doomed", [first, hang, Step("last", lambda ctx: 1)])
"""


def test_a_pipeline_whose_process_is_killed_reads_as_killed_and_resumes(
    client: Client, tmp_path: Path
) -> None:
    script = tmp_path / "doomed.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {
        **os.environ,
        "CHACHAML_STORE": client.settings.store_url,
        "CHACHAML_ARTIFACTS": str(tmp_path / "artifacts"),
        "CHACHAML_HEARTBEAT_SECONDS": "0.2",
    }
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    try:
        (found,) = poll(
            lambda: [
                p
                for p in pipelines(name="doomed", client=client)
                if p.step_counts.get("running") == 1 and p.step_counts.get("completed") == 1
            ]
        )
    finally:
        proc.kill()
        proc.wait(WAIT)

    poll(lambda: pipeline(found.id, client=client).status == "killed")
    detail = pipeline(found.id, client=client)
    assert [s.status for s in detail.steps] == ["completed", "killed", "pending"]
    assert client.get_run(detail.run_id or "").status == "killed"
    poll(lambda: client.get_run(detail.steps[1].run_id or "").status == "killed")

    result = resume_pipeline(
        found.id,
        [Step("first", print), Step("hang", lambda c: c.prev_result["rows"]), Step("last", print)],
        client=client,
    )
    assert result.results == {"first": {"rows": 3}, "hang": 3, "last": None}
    assert result.detail.status == "completed"
