"""The load balancer's dispatch policies, as a table: one entry (one function) per policy.

Every policy has the same shape: it takes the arrival times, every request's base work
``base`` and each replica's slowness ``scale`` (replica ``k`` serves request ``i`` in
``base[i] * scale[k]``), the number of replicas and a seeded ``rng``, and returns which replica
served each request and when it finished. :func:`~mlscale_lab.scaling.simulate_balancer` looks
the policy up in :data:`POLICY_TABLE`; adding a policy is one decorated function here (and its
test). Blind policies (round robin, random) route without looking at the replicas, so each
replica is a FIFO queue whose waits follow Lindley's recursion, with no event loop.
"""

from __future__ import annotations

import heapq
import numbers
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlscale_lab.queueing._replay import routed_waits

__all__ = ["POLICY_TABLE", "Policy", "custom_dispatch", "static_routing"]


@dataclass(frozen=True)
class Policy:
    """One dispatch policy of the load-balancer simulator.

    Attributes
    ----------
    name : str
        What :func:`~mlscale_lab.scaling.simulate_balancer` calls it.
    rule : str
        The rule in one sentence (the first line of its function's docstring).
    dispatch : callable
        ``dispatch(arrivals, base, scale, servers, rng) -> (assign, done)``.
    blind : bool
        Routes without looking at the replicas (each gets an equal share of the requests,
        whatever its speed): the simulator warns when that share overloads a slow replica.
    """

    name: str
    rule: str
    dispatch: Callable
    blind: bool = False


#: Every policy by name, in the order the labs show them.
POLICY_TABLE: dict[str, Policy] = {}


def _policy(name: str, *, blind: bool = False):
    def register(fn):
        rule = (fn.__doc__ or name).strip().splitlines()[0]
        POLICY_TABLE[name] = Policy(name, rule, fn, blind)
        return fn

    return register


def static_routing(assign, arrivals, base, scale, servers):
    """Waits and service times when ``assign`` fixed each request's replica in advance.

    Parameters
    ----------
    assign : numpy.ndarray of int
        The replica of each request (round robin, random).
    arrivals, base, scale : numpy.ndarray
        As in the policies.
    servers : int

    Returns
    -------
    waits, services : numpy.ndarray

    Examples
    --------
    >>> waits, _ = static_routing(np.array([0, 0]), np.array([0.0, 0.5]), np.ones(2), np.ones(1), 1)
    >>> waits.tolist()
    [0.0, 0.5]
    """
    services = base * scale[assign]
    return routed_waits(assign, arrivals, services, servers), services


def _routed(assign, arrivals, base, scale, servers):
    waits, services = static_routing(assign, arrivals, base, scale, servers)
    return assign, arrivals + waits + services


@_policy("round_robin", blind=True)
def round_robin(arrivals, base, scale, servers, rng):
    """Each replica in turn, whatever it is doing.

    >>> assign, done = round_robin(np.array([0.0, 0.1, 0.2]), np.ones(3), np.ones(2), 2, None)
    >>> assign.tolist(), done.tolist()
    ([0, 1, 0], [1.0, 1.1, 2.0])
    """
    return _routed(np.arange(arrivals.size, dtype=np.int64) % servers, arrivals, base, scale,
                   servers)


@_policy("random", blind=True)
def random_replica(arrivals, base, scale, servers, rng):
    """A replica drawn at random, whatever it is doing.

    >>> assign, _ = random_replica(np.zeros(4), np.ones(4), np.ones(3), 3, np.random.default_rng(0))
    >>> assign.tolist()
    [2, 1, 1, 0]
    """
    return _routed(rng.integers(0, servers, arrivals.size), arrivals, base, scale, servers)


def _fewest(arrivals, base, scale, servers, choose):
    """The event loop of policies that look at queue lengths: ``choose(i, counts) -> replica``.

    One heap of (departure time, replica) keeps every replica's count of requests (waiting or
    in service) current.
    """
    n = arrivals.size
    counts = [0] * servers
    free_at = [0.0] * servers
    heap: list[tuple[float, int]] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    arr, b, sc = arrivals.tolist(), base.tolist(), scale.tolist()
    assign = [0] * n
    done_at = [0.0] * n
    for i, t in enumerate(arr):
        while heap and heap[0][0] <= t:
            counts[heappop(heap)[1]] -= 1
        k = choose(i, counts)
        f = free_at[k]
        done = (f if f > t else t) + b[i] * sc[k]
        free_at[k] = done
        counts[k] += 1
        heappush(heap, (done, k))
        assign[i] = k
        done_at[i] = done
    return np.asarray(assign, dtype=np.int64), np.asarray(done_at)


@_policy("least_connections")
def least_connections(arrivals, base, scale, servers, rng):
    """Join the replica with the fewest requests (ties round robin): asks every replica.

    >>> assign, _ = least_connections(np.array([0.0, 0.1, 0.2]), np.ones(3), np.ones(2), 2, None)
    >>> assign.tolist()
    [0, 1, 0]
    """
    def choose(i, counts):
        m = min(counts)
        try:
            return counts.index(m, i % servers)
        except ValueError:
            return counts.index(m)

    return _fewest(arrivals, base, scale, servers, choose)


@_policy("power_of_two")
def power_of_two(arrivals, base, scale, servers, rng):
    """Sample two different replicas, join the one with fewer requests.

    Per-replica deques of departure times give each sampled replica's count without touching
    the others. With one replica there is nothing to choose: it is least connections.

    >>> assign, _ = power_of_two(np.zeros(2), np.ones(2), np.ones(2), 2, np.random.default_rng(0))
    >>> sorted(assign.tolist())  # two replicas: both sampled, the idle one joined
    [0, 1]
    """
    if servers < 2:
        return least_connections(arrivals, base, scale, servers, rng)
    n = arrivals.size
    first = rng.integers(0, servers, n)
    second = (first + rng.integers(1, servers, n)) % servers  # a different replica
    queues = [deque() for _ in range(servers)]
    arr, b, sc = arrivals.tolist(), base.tolist(), scale.tolist()
    assign = [0] * n
    done_at = [0.0] * n
    for i, (t, x, y) in enumerate(zip(arr, first.tolist(), second.tolist(), strict=True)):
        qx = queues[x]
        while qx and qx[0] <= t:
            qx.popleft()
        qy = queues[y]
        while qy and qy[0] <= t:
            qy.popleft()
        if len(qy) < len(qx):
            x, qx = y, qy
        done = (qx[-1] if qx else t) + b[i] * sc[x]
        qx.append(done)
        assign[i] = x
        done_at[i] = done
    return np.asarray(assign, dtype=np.int64), np.asarray(done_at)


@_policy("central_queue")
def central_queue(arrivals, base, scale, servers, rng):
    """One shared FIFO queue: each request takes the replica that frees up first (M/M/c).

    A heap of the replicas' free times.

    >>> assign, done = central_queue(np.array([0.0, 0.1, 0.2]), np.ones(3), np.ones(2), 2, None)
    >>> assign.tolist(), done.tolist()
    ([0, 1, 0], [1.0, 1.1, 2.0])
    """
    n = arrivals.size
    free = [(0.0, k) for k in range(servers)]
    heapreplace = heapq.heapreplace
    arr, b, sc = arrivals.tolist(), base.tolist(), scale.tolist()
    assign = [0] * n
    done_at = [0.0] * n
    for i, t in enumerate(arr):
        f, k = free[0]
        done = (f if f > t else t) + b[i] * sc[k]
        heapreplace(free, (done, k))
        assign[i] = k
        done_at[i] = done
    return np.asarray(assign, dtype=np.int64), np.asarray(done_at)


def custom_dispatch(policy: Callable, arrivals, base, scale, servers, rng):
    """Ask a learner's ``policy(queue_lengths, rng) -> replica index`` for every request.

    Examples
    --------
    >>> fastest_first = lambda q, rng: 0
    >>> custom_dispatch(fastest_first, np.zeros(2), np.ones(2), np.ones(2), 2, None)[0].tolist()
    [0, 0]
    """
    def choose(i, counts):
        k = policy(tuple(counts), rng)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < servers:
            raise ValueError(
                f"simulate_balancer(policy=<custom>): expected a replica index, an int in "
                f"0..{servers - 1}, got {k!r} from the policy"
            )
        return int(k)

    return _fewest(arrivals, base, scale, servers, choose)
