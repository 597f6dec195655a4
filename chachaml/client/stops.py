"""Stopping runs on request from Python: ask a run to stop, and hear it in training code.

``chachaml.should_stop()`` and friends act through the default client (on its current run);
``Stops(client)`` binds the same API to another :class:`~chachaml.Client`. A request is heard
in the reply to the run's heartbeat, so within one ``CHACHAML_HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

from chachaml.client.default import ClientBound
from chachaml.client.run import ActiveRun, OnStop
from chachaml.errors import NoActiveRun
from chachaml.records.runs import StopRequest
from chachaml.tools import watch as ops


class Stops(ClientBound):
    """Stop requests, bound to a client (the default client when none is given)."""

    def _current(self) -> ActiveRun:
        run = self.client.active_run()
        if run is None:
            raise NoActiveRun(
                "no active run in this thread or task: should_stop and on_stop act on the"
                " run of `with chachaml.run(...)`"
            )
        return run

    def should_stop(self) -> bool:
        """Whether the current run was asked to stop: check it in the training loop.

        End early when it is true; the run then ends ``stopped``.
        """
        return self._current().should_stop()

    def on_stop(self, fn: OnStop) -> OnStop:
        """Call ``fn(request)`` once when the current run is asked to stop (a decorator too)."""
        return self._current().on_stop(fn)

    def stop_run(self, run_id: str, reason: str | None = None) -> StopRequest:
        """Ask any running run to stop, as the client's user; returns the request stored.

        Its process sees it at its next heartbeat and the run ends ``stopped``. Asking again
        returns the first request.
        """
        client = self.client
        return client.op(ops.stop_run, run_id, reason, client.settings.user)


_default = Stops()

should_stop = _default.should_stop
on_stop = _default.on_stop
stop_run = _default.stop_run

__all__ = ["Stops", "on_stop", "should_stop", "stop_run"]
