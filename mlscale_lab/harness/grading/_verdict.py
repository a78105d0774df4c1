"""The replay's verdicts, put where nbgrader scores them: each test cell's outputs become what
the pristine replay saw (its output, and its error if it failed), and the grader's own checks
(a snapshot that never arrived, a result without the nonce, an environment changed while the
test ran) become a ``GradingCheck`` error worth 0 points plus a flag naming what happened.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from mlscale_lab.harness.grading._feedback import HIDDEN_FAILURE, hidden_line_numbers
from mlscale_lab.harness.grading._forks import current as current_zygotes
from mlscale_lab.harness.grading._holder import HolderError, SandboxHolder
from mlscale_lab.harness.grading._pristine import SNAPSHOT_ID, ReplayServer, replay_env
from mlscale_lab.harness.grading._sandbox import SandboxSpec, find_bwrap


def cell_reason(cell) -> str:
    """A test cell's verdict in words, read from its outputs."""
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            if out.ename == "NotRun":
                return "not run (0 points)"
            msg = f"{out.ename}: {out.evalue}".strip().rstrip(":")
            return f"failed: {msg[:200]}"
    return "passed"


class Replayer:
    """Runs each test in the replay as soon as the submission's kernel has reached it.

    Start it before the notebook runs: it listens on a Unix socket in ``sockets`` (the folder
    of the kernel's own sockets, short enough for a socket's path and bound in its sandbox). The grader's cell before each test connects and names its test; the grader hands
    that connection to the replay driver, which runs the test in a fresh process whose calls
    into the learner's code travel over it, while the kernel waits in that cell (so the test
    sees the files the notebook had written). :meth:`finish` stops it and puts the verdicts
    into the test cells.
    """

    def __init__(self, plans: dict, sockets: Path, *, job: Path, work: Path, hidden,
                 sandbox: bool, memory, timeout: float, seed) -> None:
        self.plans = plans
        self.order = sorted(plans)
        self.socket_path = Path(sockets) / "grader.sock"
        self.tests = [{"grade_id": plans[i].grade_id, "source": plans[i].source, "names": plans[i].names,
                       "filename": f"<test {plans[i].grade_id}>", "pinned": plans[i].pinned,
                       "nonce": plans[i].nonce} for i in self.order]
        self.notes: dict[int, dict] = {}
        self.server = None
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.socket_path))
        self._listener.listen(4)
        self._listener.settimeout(0.05)
        self.holder = None
        if self.tests:
            prefix = []
            private = job / "replay"
            forked = current_zygotes() is not None
            if sandbox:
                spec = SandboxSpec(writable=[work, private], workdir=work,
                                   hidden=[h for h in hidden if Path(h) != private])
                prefix = spec.bwrap_args(find_bwrap() or "bwrap")
                if forked:
                    try:
                        self.holder = SandboxHolder(spec)
                    except HolderError:
                        forked = False
            pins = {spec[0] for t in self.tests for spec in t["pinned"].values()}
            self.server = ReplayServer(self.tests, workdir=work, env=replay_env(work, private, seed),
                                       sandbox_prefix=prefix, memory_bytes=memory, timeout=timeout, seed=seed,
                                       watch={m.split(".")[0] for m in pins} | {"mlscale_lab"},
                                       preload=pins, log=private / "replay.log", holder=self.holder,
                                       forked=forked)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _serve(self, conn: socket.socket) -> None:
        """One connection from the kernel's side: which test it is, then that test's replay."""
        from mlscale_lab.harness.grading._codec import recv_frame

        with conn:
            conn.settimeout(10)
            try:
                hello, _ = recv_frame(conn)
            except (OSError, ValueError, EOFError):
                return
            by_ticket = {self.plans[i].ticket: k for k, i in enumerate(self.order)}
            k = by_ticket.get(hello[1]) if isinstance(hello, list) and len(hello) == 2 else None
            if k is None or self.order[k] in self.notes:
                return
            self.notes[self.order[k]] = {"connected": True}
            conn.settimeout(None)
            if self.server is not None:
                self.server.run(k, conn)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._serve(conn)

    def finish(self, nb, snapshot_errors: dict, result) -> dict[str, str]:
        """Stop, and put every verdict into its test cell; return the CSV reason by grade_id
        (hidden messages included: grades.csv is the instructor's)."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        if self._thread.is_alive() and self.server is not None:
            # A test still running when the kernel is gone (killed past the budget): it has nobody
            # to ask; it ends with the driver rather than at its own timeout.
            self.server.close()
        self._thread.join()
        self._listener.close()
        results = {}
        if self.server is not None:
            results = {self.tests[k]["grade_id"]: r for k, r in self.server.results().items()}
        self.close()
        reasons = {}
        for i, plan in self.plans.items():
            cell = nb.cells[i]
            if any(o.output_type == "error" and o.ename == "NotRun" for o in cell.outputs):
                continue  # the kernel never got there: nbgrader scores the NotRun error 0
            if i not in self.notes:
                why = snapshot_errors.get(SNAPSHOT_ID + str(i), "it never reached the grader")
                result.flags.append(f"{plan.grade_id}: the grader's own cell before this test did not run "
                                    f"as written ({why}): the submission changed how its kernel runs code")
                _set_outputs(cell, "", _error_output("GradingCheck", "the grader could not reach your answers "
                                                     "in your kernel: something in the notebook changed "
                                                     "how cells run", []))
                reasons[plan.grade_id] = "0 points: the grader's cell before this test did not run"
            else:
                reasons[plan.grade_id] = _apply_verdict(cell, plan, results.get(plan.grade_id), result)
        return reasons

    def close(self) -> None:
        """Stop everything: the driver, its sandbox, the grader's socket (also after an error)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.holder is not None:
            self.holder.close()
            self.holder = None


def _apply_verdict(cell, plan, res, result: object) -> str:
    if not isinstance(res, dict) or "problem" in res or res.get("nonce") != plan.nonce:
        why = (res or {}).get("problem", "it gave no result") if isinstance(res, dict) else "it gave no result"
        if isinstance(res, dict) and "problem" not in res and res.get("nonce") != plan.nonce:
            why = "its result did not carry the grader's nonce"
            result.flags.append(f"{plan.grade_id}: the replay's result was forged")
        _set_outputs(cell, "", _error_output("GradingCheck", f"the test did not finish: {why}", []))
        return f"failed: the test did not finish in a fresh process ({why})"
    output = res.get("output", "")
    if res.get("changed"):
        result.flags.append(f"{plan.grade_id}: " + "; ".join(res["changed"][:5]))
        _set_outputs(cell, output, _error_output("GradingCheck", "the test's environment was changed "
                                                 "while it ran (see the grading note)", []))
        return "0 points: " + "; ".join(res["changed"][:5])
    if res.get("load_error"):
        _set_outputs(cell, output, _error_output("GradingCheck", "your answers could not be loaded in a "
                                                 f"fresh process: {res['load_error']}", []))
        return f"failed: the answers could not be loaded in a fresh process ({res['load_error']})"
    if res.get("passed"):
        _set_outputs(cell, output, None)
        return "passed"
    err = res.get("error") or {"ename": "Error", "evalue": "", "line": None, "frames": []}
    line = err.get("line")
    hidden_line = line is not None and (line in hidden_line_numbers(cell.source) or (
        plan.private_from is not None and line >= plan.private_from))
    msg = f"{err['ename']}: {err['evalue']}".strip().rstrip(":")
    if hidden_line:
        out = _error_output(err["ename"], "", [HIDDEN_FAILURE.format(ename=err["ename"])])
    else:
        ec = cell.get("execution_count") or 0
        frames = [f.replace("Cell, line", f"Cell In[{ec}], line", 1) for f in err.get("frames", [])]
        out = _error_output(err["ename"], err["evalue"], ["Traceback (most recent call last):", *frames,
                                                           f"{err['ename']}: {err['evalue']}"])
    _set_outputs(cell, output, out)
    return f"failed: {msg[:200]}" + (" (a hidden test)" if hidden_line else "")


def _error_output(ename: str, evalue: str, traceback: list[str]):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=traceback or [f"{ename}: {evalue}"])


def _set_outputs(cell, text: str, error) -> None:
    """The test cell's outputs as the replay saw them (the kernel's own are discarded)."""
    from nbformat.v4 import new_output

    cell.outputs = ([new_output("stream", name="stdout", text=text)] if text else []) + (
        [error] if error is not None else [])
