"""``DaskExecutor``: a pipeline's steps on a Dask cluster, each recorded from its worker.

::

    from dask.distributed import LocalCluster
    import chachaml as ml

    with LocalCluster(n_workers=4) as cluster:
        ml.run_pipeline("sweep", steps, executor=f"dask://{cluster.scheduler_address}")

Each attempt is one Dask task. The worker opens its own chachaml client on the pipeline's
store (the driver sends the store URL and, unless ``send_credentials=False``, its token),
starts the attempt's run there (it records the worker's host and pid, and the tag
``chachaml.worker``), and records the step's end and JSON result itself. A step's result
stays on the cluster: dependents get it as a Dask future; the driver fetches only what the
caller of the pipeline asks for at the end. Inside a step, ``import chachaml as ml`` logs
through the worker's client, to the step's run.

A worker killed mid-step: Dask runs the task again on another worker (up to its
``allowed-failures``), and the attempt there ends the dead attempt's run ``killed`` and
counts as the next attempt, within the step's ``retries``. Workers must be able to reach
the store: a SQLite file is refused unless every worker is on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from chachaml.client import bridge, default
from chachaml.client.pipelines.attempt import (
    WORKER_TAG,
    Job,
    fan_out_items,
    perform,
    perform_element,
)
from chachaml.errors import InvalidInput, StoreUnavailable
from chachaml.settings import Settings
from chachaml.store import sqlite_path
from chachaml.tools import pipelines as ops

if TYPE_CHECKING:
    import distributed

    from chachaml.client.client import Client

DASK_WORKER_TAG = "chachaml.dask_worker"
LOOPBACK = ("127.", "::1", "localhost")
KEEP_CLIENTS = 2  # spare clients per worker process: each holds a pool of connections


class DaskExecutor:
    """Steps on a Dask cluster: give a ``distributed.Client`` or a scheduler address.

    ``DaskExecutor("tcp://host:8786")`` (or ``"dask://host:8786"``) connects on first use
    and stays connected until :meth:`shutdown` (or the end of a ``with`` block); a client
    you pass stays yours. ``send_credentials=False`` keeps the driver's token and S3 keys
    off the cluster: the workers then use their own ``CHACHAML_TOKEN`` and S3 settings.
    """

    def __init__(
        self,
        client_or_address: distributed.Client | str,
        *,
        send_credentials: bool = True,
    ) -> None:
        self._address: str | None = None
        self._dask: distributed.Client | None = None
        self._owned = False
        if isinstance(client_or_address, str):
            address = client_or_address.strip()
            if address.startswith("dask://"):
                address = "tcp://" + address.removeprefix("dask://")
            if "://" not in address or not urlsplit(address).hostname:
                raise InvalidInput(
                    "a Dask scheduler address looks like dask://host:8786;"
                    f" got {client_or_address!r}"
                )
            self._address = address
        else:
            self._dask = client_or_address
        self.send_credentials = send_credentials
        self.per_run = False  # set for executors made from a "dask://" string for one run
        self._settings: Settings | None = None

    def __repr__(self) -> str:
        where = self._address or getattr(self._dask, "scheduler", None)
        return f"DaskExecutor({where!r})"

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def client(self) -> distributed.Client:
        """The Dask client (connected on first use)."""
        if self._dask is None:
            import distributed

            assert self._address is not None
            try:
                self._dask = distributed.Client(  # type: ignore[no-untyped-call]
                    self._address, set_as_default=False, timeout=10
                )
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot reach the Dask scheduler at {self._address}: {exc}"
                ) from exc
            self._owned = True
        return self._dask

    def connect(self) -> None:
        """Connect now (otherwise the first run does)."""
        _ = self.client

    def shutdown(self) -> None:
        """Disconnect from the scheduler, if this executor connected (the cluster stays up)."""
        if self._owned and self._dask is not None:
            self._dask.close()  # type: ignore[no-untyped-call]
            self._dask = None
            self._owned = False

    @property
    def limit(self) -> int | None:
        """No limit here: the cluster's scheduler queues fan-out elements."""
        return None

    @property
    def dashboard(self) -> str | None:
        """The Dask dashboard's address, when the cluster serves one."""
        if self._dask is None:
            return None
        with contextlib.suppress(Exception):
            link = self._dask.dashboard_link
            return str(link) if link else None
        return None

    async def open(self, client: Client, max_parallel: int) -> None:
        """Connect, and refuse a store the workers cannot share (before anything runs)."""
        dask = await bridge.to_thread(lambda: self.client)
        self._settings = await bridge.to_thread(self._worker_settings, client, dask)

    def _worker_settings(self, client: Client, dask: distributed.Client) -> Settings:
        settings = client.settings
        if getattr(client, "_transport", None) is not None:
            raise InvalidInput(
                "this client reaches its store through an in-process transport, which Dask"
                " workers cannot use; give it a store URL the workers can reach"
            )
        url = settings.store_url
        if url.startswith("sqlite:"):
            path = sqlite_path(url)
            remote = _remote_workers(dask)
            if path is None or remote:
                where = f" (workers on {', '.join(remote)})" if remote else ""
                raise InvalidInput(
                    f"the store {url} is a SQLite file that Dask workers on other machines"
                    f" cannot share{where}; run the pipeline against PostgreSQL"
                    " (CHACHAML_STORE=postgresql://...) or a chachaml server (http://...)"
                )
            url = f"sqlite:///{path}"
        artifacts = settings.artifact_root
        if "://" not in artifacts:
            artifacts = os.path.abspath(os.path.expanduser(artifacts))
        keep = self.send_credentials
        return Settings(
            store_url=url,
            artifact_root=artifacts,
            user=settings.user,
            heartbeat_seconds=settings.heartbeat_seconds,
            flush_interval=settings.flush_interval,
            flush_points=settings.flush_points,
            max_pending_points=settings.max_pending_points,
            base_url=settings.base_url,
            alert_timeout=settings.alert_timeout,
            alert_attempts=settings.alert_attempts,
            webhook_allow_private=settings.webhook_allow_private,
            s3=settings.s3
            if keep
            else dataclasses.replace(
                settings.s3, access_key_id=None, secret_access_key=None, session_token=None
            ),
            token=settings.token if keep else None,
        )

    def _job(self, job: Job) -> Job:
        assert self._settings is not None, "DaskExecutor used before open()"
        return dataclasses.replace(job, settings=self._settings, recover=True)

    async def attempt(
        self, job: Job, inputs: Mapping[str, Any], started: Callable[[], None]
    ) -> Any:
        """Submit the attempt to the cluster; its future once it has finished."""
        key = f"chachaml-{job.step}-{job.attempt}-{uuid.uuid4().hex[:12]}"
        future = self.client.submit(
            _attempt_task, self._job(job), dict(inputs), key=key, pure=False
        )
        started()
        return await _finished(future, self.client)

    async def element(self, job: Job, inputs: Mapping[str, Any], index: int) -> Any:
        """Submit one fan-out element; its future once it has finished."""
        key = f"chachaml-{job.step}[{index}]-{job.attempt}-{uuid.uuid4().hex[:12]}"
        future = self.client.submit(
            _element_task, self._job(job), dict(inputs), index, key=key, pure=False
        )
        return await _finished(future, self.client)

    async def _value(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False)
        await _finished(future, self.client)
        return await bridge.to_thread(future.result)

    async def length(self, handle: Any, job: Job) -> int:
        """The list's length, computed where the list is."""
        n: int = await self._value(fan_out_items, handle, job.step, job.map_over or "")
        return n

    async def collect(self, handles: Sequence[Any]) -> Any:
        """A future of the list, built on a worker."""
        future = self.client.submit(_collect, *handles, pure=False)
        return await _finished(future, self.client)

    async def encoded(self, handle: Any) -> str | None:
        """The JSON text, encoded on a worker (at most 1 MB reaches the driver)."""
        text: str | None = await self._value(ops.encode_result, handle)
        return text

    async def values(self, handles: Mapping[str, Any]) -> dict[str, Any]:
        """The results, gathered from the workers."""
        gathered: dict[str, Any] = await bridge.to_thread(self.client.gather, dict(handles))
        return gathered

    async def close(self) -> None:
        """The run is over: disconnect if this executor was made for it."""
        self._settings = None
        if self.per_run:
            await bridge.to_thread(self.shutdown)


def _remote_workers(dask: distributed.Client) -> list[str]:
    """The hosts of workers (or, with none yet, of the scheduler) not on this machine."""
    info = dask.scheduler_info()
    addresses = list(info.get("workers", {})) or [str(info.get("address", ""))]
    here = {socket.gethostname()}
    with contextlib.suppress(OSError):
        here |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    return remote_hosts(addresses, here)


def remote_hosts(addresses: Sequence[str], here: set[str]) -> list[str]:
    """The hosts of ``addresses`` that are neither loopback nor one of ``here``'s names."""
    remote = set()
    for address in addresses:
        if address.startswith("inproc://"):
            continue
        host = urlsplit(address).hostname or ""
        if not host.startswith(LOOPBACK) and host not in here:
            remote.add(host)
    return sorted(remote)


async def _finished(future: distributed.Future[Any], dask: distributed.Client) -> Any:
    """Wait for ``future`` without holding a thread; it, or the task's own error.

    Cancelling the waiter cancels the task on the cluster.
    """
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    future.add_done_callback(  # type: ignore[no-untyped-call]
        lambda _: loop.call_soon_threadsafe(done.set)
    )
    try:
        await done.wait()
    except BaseException:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await bridge.to_thread(future.cancel)
        raise
    if future.status == "finished":
        return future
    if future.status == "error":
        error = await bridge.to_thread(future.exception)
        if isinstance(error, BaseException):
            raise error
    raise RuntimeError(f"Dask task {future.key} ended {future.status}")


def _collect(*values: Any) -> list[Any]:
    return list(values)


# on the workers

_worker_lock = threading.Lock()
_spare_clients: dict[Settings, Client] = {}  # while the default client is busy elsewhere


def worker_client(settings: Settings | None) -> Client:
    """This worker process's client for ``settings``: its default client when it can be.

    The default client (whose methods are ``ml.*``) is switched to the pipeline's settings
    when idle, so ``ml.log_metric`` in a step lands on the step's run; while it is busy
    with another store's step, a spare client serves (``ml.*`` then does not reach it).
    """
    assert settings is not None, "a job sent to a worker carries its settings"
    if settings.token is None:
        own = Settings.from_env()
        settings = dataclasses.replace(settings, token=own.token, s3=own.s3)
    with _worker_lock:
        client = default.default_client()
        if client.settings == settings:
            return client
        if not client.open_runs():
            client.use_store()  # closes its runtime (and refuses while runs are going)
            client.settings = settings
            return client
        from chachaml.client.client import Client

        spare = _spare_clients.pop(settings, None) or Client(settings=settings)
        for old_settings, old in list(_spare_clients.items())[: 1 - KEEP_CLIENTS]:
            if not old.open_runs():  # its store connections go back
                del _spare_clients[old_settings]
                old.close()
        _spare_clients[settings] = spare  # the most recently used last
        return spare


def _where() -> dict[str, str]:
    where = {WORKER_TAG: f"{socket.gethostname()}:{os.getpid()}"}
    with contextlib.suppress(Exception):
        from distributed import get_worker

        where[DASK_WORKER_TAG] = str(get_worker().address)
    return where


_loop: list[bridge.LoopThread] = []  # this worker process's event loop for attempts


def _on_loop(fn: Callable[[], Awaitable[Any]]) -> Any:
    """``fn()`` on this worker's long-lived event loop.

    A timed-out step's abandoned thread then does not hold the task (a fresh ``anyio.run``
    per task would wait for it at exit).
    """
    with _worker_lock:
        if not _loop or not _loop[0].running:

            async def nothing() -> None:
                return None

            thread = bridge.LoopThread("chachaml-steps")
            thread.start(nothing, anyio.sleep_forever, nothing)
            _loop[:] = [thread]
    return _loop[0].call(fn)


def _attempt_task(job: Job, inputs: dict[str, Any]) -> Any:
    client = worker_client(job.settings)
    return _on_loop(partial(perform, client, job, inputs, where=_where()))


def _element_task(job: Job, inputs: dict[str, Any], index: int) -> Any:
    client = worker_client(job.settings)
    return _on_loop(partial(perform_element, client, job, inputs, index, where=_where()))
