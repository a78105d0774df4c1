"""The serving workers' pool: processes fed by a task queue, answering on a result queue.

Reading an answer never hangs on a dead worker (:func:`next_message` checks every 0.1 s that
none has ended, and names how it ended), and the pool's end never blocks however the run ended
(:func:`stop_workers`: terminate, then kill; a queue nobody will read is not joined).
"""

from __future__ import annotations

import time

__all__ = ["check_alive", "next_message", "stop_workers"]


def stop_workers(procs, tasks, results, finished: bool) -> None:
    """End every worker (terminate, then kill) and release both queues without blocking."""
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
    for q in (tasks, results):
        if not finished:
            # Requests no worker will read may fill the pipe: the queue's feeder thread would
            # then block for good, and join_thread with it.
            q.cancel_join_thread()
        q.close()
        if finished:
            q.join_thread()


def check_alive(procs, func, what, *, stopping: bool = False) -> None:
    """Raise when a worker has ended (once told to stop, only a failed exit counts)."""
    for p in procs:
        code = p.exitcode
        if code is None or (stopping and code == 0):
            continue
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise RuntimeError(
            f"{func}: a worker process (pid {p.pid}) {how} {what}; see its traceback above, if "
            "any (a worker that cannot import the model's class or the script that calls this "
            "outside `if __name__ == '__main__':` ends so); every worker was stopped")


def next_message(results, deadline, procs, func, what, *, stopping: bool = False):
    """The next message from the workers, checking every 0.1 s that none of them has died."""
    import queue as queue_module

    while True:
        left = deadline - time.perf_counter()
        try:
            return results.get(timeout=max(0.01, min(0.1, left)))
        except queue_module.Empty:
            check_alive(procs, func, what, stopping=stopping)
            if left <= 0:
                raise TimeoutError(f"{func}: the worker processes took too long {what} "
                                   "(timeout_s); they were stopped") from None
