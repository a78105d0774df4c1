"""Dask clusters: a local one of worker processes that leaves nothing behind, a client for a
remote scheduler, and the workers connected to either.

dask is imported inside the functions, never at module import.
"""

from __future__ import annotations

import contextlib
import os

from mlscale_lab.validation import check_int, check_positive

__all__ = ["connect", "connected_workers", "local_cluster", "worker_addresses"]


@contextlib.contextmanager
def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, *, memory_limit="600MiB", **kwargs):
    """A ``LocalCluster`` of worker *processes* and a ``Client`` on it; both closed on exit.

    The dashboard is off (no port to clash with), logs are quiet, and every worker runs its
    BLAS with one thread (Dask's default for worker processes), so ``n_workers`` is the
    parallelism you asked for. The workers' scratch space (spilled data, lock files) is a
    temporary folder of the cluster's own, removed with it: Dask's default,
    ``dask-scratch-space`` in the temporary folder, stays behind with a lock file for every
    worker that was killed.

    Parameters
    ----------
    n_workers : int
        Worker processes (>= 0; ``adapt`` can add more later).
    threads_per_worker : int
        Threads in each worker (>= 1).
    memory_limit : str or int
        Per worker; the nanny restarts a worker that passes it.
    **kwargs
        Passed on to ``distributed.LocalCluster``.

    Yields
    ------
    (LocalCluster, Client)

    Examples
    --------
    >>> with local_cluster(1) as (cluster, client):  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    import logging

    import dask
    from distributed import Client, LocalCluster

    from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir

    n_workers = check_int("local_cluster", "n_workers", n_workers, low=0)
    threads_per_worker = check_int("local_cluster", "threads_per_worker", threads_per_worker, low=1)
    scratch = owned_tempdir("dask")
    options = {
        "local_directory": str(scratch),
        "n_workers": n_workers,
        "threads_per_worker": threads_per_worker,
        "processes": True,
        "memory_limit": memory_limit,
        "dashboard_address": None,
        # No dashboard, and the scheduler's small HTTP server on a free loopback port: the
        # default 8787 may be taken by another cluster (a warning), and 0.0.0.0 is not needed.
        "scheduler_kwargs": {"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        "silence_logs": logging.ERROR,
    }
    options.update(kwargs)
    # The scheduler runs in this process: keep its INFO chatter (a worker retired by adapt, a
    # connection closed) out of notebook cells while the cluster lives.
    dlog = logging.getLogger("distributed")
    old_level = dlog.level
    dlog.setLevel(logging.ERROR)
    # Worker processes (also those adapt starts later) read their log level from the
    # environment when they import distributed.
    env_key = "DASK_LOGGING__DISTRIBUTED"
    old_env = os.environ.get(env_key)
    if old_env is None:
        os.environ[env_key] = "error"
    try:
        # the scheduler (in this process) makes a scratch space too, where the config says
        with dask.config.set({"temporary-directory": str(scratch)}):
            cluster = LocalCluster(**options)
            try:
                client = Client(cluster)
                try:
                    yield cluster, client
                finally:
                    client.close()
            finally:
                cluster.close()
    finally:
        dlog.setLevel(old_level)
        if old_env is None:
            os.environ.pop(env_key, None)
        remove_tempdir(scratch)


def connect(address: str, *, timeout: float = 10.0):
    """A ``Client`` for a running scheduler at ``address`` (``"tcp://host:8786"``).

    This is how a notebook reaches a real cluster; the functions below then run unchanged.

    Parameters
    ----------
    address : str
        The scheduler's address, with its protocol.
    timeout : float
        Seconds to wait for the connection.

    Returns
    -------
    distributed.Client
        Close it (or use it as a context manager) when done.

    Examples
    --------
    >>> connect("localhost")
    Traceback (most recent call last):
    ...
    ValueError: connect(address='localhost'): expected a scheduler address such as 'tcp://10.0.0.5:8786', got 'localhost'
    """
    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"connect(address={address!r}): expected a scheduler address such as "
                         f"'tcp://10.0.0.5:8786', got {address!r}")
    timeout = check_positive("connect", "timeout", timeout)
    from distributed import Client

    return Client(address, timeout=f"{timeout}s")


def connected_workers(client, wanted: int, timeout_s: float = 30.0) -> list[str]:
    """The connected workers' addresses, after waiting up to ``timeout_s`` for ``wanted`` of
    them where the client's own cluster has that many (a worker restarting, or one slow to
    register with the scheduler on a busy machine, is not connected for a moment)."""
    addrs = worker_addresses(client)
    cluster = getattr(client, "cluster", None)
    # a SpecCluster's worker_spec holds the workers asked for, started or not
    has = max(len(getattr(cluster, name, ())) for name in ("workers", "worker_spec"))
    if len(addrs) < wanted <= has:
        try:
            client.wait_for_workers(wanted, timeout=timeout_s)
        except TimeoutError:
            pass  # the caller says how many there are
        addrs = worker_addresses(client)
    return addrs


def worker_addresses(client) -> list[str]:
    """The connected workers' addresses, sorted (stable order for pinning work).

    Parameters
    ----------
    client : distributed.Client

    Returns
    -------
    list of str
    """
    return sorted(client.scheduler_info(n_workers=-1)["workers"])
