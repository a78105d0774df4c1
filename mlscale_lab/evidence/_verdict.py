"""Verdicts: a claim held against an interval, answered holds, does not hold, or inconclusive.

The rule is deliberately plain. A claim says a quantity lies above a bound, below one, or
between two. If the whole interval lies where the claim says, the claim **holds**; if the whole
interval lies outside, it **does not hold**; if the interval straddles a bound, the data cannot
tell, and the verdict is **inconclusive**. A machine too busy to trust turns a "does not hold"
into "inconclusive" (noise only ever slows a measurement down, so it can make a true claim
look false), and a "holds" too where noise could have produced it (``noise_favours_claim``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlscale_lab.evidence._intervals import Interval

__all__ = ["HOLDS", "INCONCLUSIVE", "REFUTED", "Verdict", "checkpoint", "judge"]

HOLDS = "holds"
REFUTED = "does not hold"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """What the data say of a claim.

    Attributes
    ----------
    status : str
        ``"holds"``, ``"does not hold"`` or ``"inconclusive"``.
    claim : str
        The claim in words ("two workers are at least 1.2x faster").
    reason : str
        Why: where the interval lies against the bound, or what made the machine untrustworthy.
    interval : Interval or None
        The evidence.
    machine : MachineReport or None
        The machine's state while measuring, when a check was made.
    """

    status: str
    claim: str
    reason: str
    interval: Interval | None = None
    machine: object | None = None

    @property
    def holds(self) -> bool:
        """The claim holds."""
        return self.status == HOLDS

    @property
    def refuted(self) -> bool:
        """The claim does not hold."""
        return self.status == REFUTED

    @property
    def inconclusive(self) -> bool:
        """The data (or this machine) cannot tell."""
        return self.status == INCONCLUSIVE

    def __str__(self) -> str:
        evidence = f" Measured {self.interval}:" if self.interval is not None else ""
        return f"{self.status}: {self.claim}.{evidence} {self.reason}."

    def __bool__(self) -> bool:
        raise TypeError("a Verdict has three values: test .holds, .refuted or .inconclusive, "
                        "not its truth")

    def as_record(self) -> dict:
        """A plain dict for :func:`mlscale_lab.record`: status, claim, reason, the interval."""
        out = {"status": self.status, "claim": self.claim, "reason": self.reason}
        if self.interval is not None:
            out.update(estimate=self.interval.estimate, low=self.interval.low,
                       high=self.interval.high, level=self.interval.level)
        return out


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def judge(interval: Interval, claim: str, *, above: float | None = None,
          below: float | None = None, machine=None, noise_favours_claim: bool = False,
          needs_cpus: float | None = None) -> Verdict:
    """Hold ``claim`` ("the quantity lies above ``above`` and/or below ``below``") to ``interval``.

    Parameters
    ----------
    interval : Interval
        The measured quantity (see :mod:`mlscale_lab.evidence`'s interval functions).
    claim : str
        The claim in a learner's words.
    above, below : float, optional
        The bounds the claim puts on the quantity (at least one).
    machine : MachineReport, optional
        From a :class:`MachineCheck` around the measurement. When it is not trusted, a
        "does not hold" is reported as inconclusive, with the machine's reasons (which an
        inconclusive verdict gives too: "one CPU only" says more than "the interval straddles").
    noise_favours_claim : bool, default False
        True when a busy machine could make the claim look true (an open loop's tail looking
        longer than a closed loop's, say): then a "holds" on an untrusted machine is
        inconclusive too.
    needs_cpus : float, optional
        CPUs the claim needs to show at all (2 for "two threads beat one"). With fewer
        (``machine.cpus``, else :func:`~mlscale_lab.evidence.machine_cpus`), the verdict is
        inconclusive whatever the interval says: the threads or workers took turns on the CPUs
        there are, so the measurement says nothing about the claim.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from mlscale_lab.evidence import Interval
    >>> print(judge(Interval(1.6, 1.5, 1.7, 0.95, "paired bootstrap", 20), "2 workers beat 1 by 1.2x", above=1.2))
    holds: 2 workers beat 1 by 1.2x. Measured 1.6 (95 % CI 1.5 to 1.7, paired bootstrap, n=20): the interval lies above 1.2.
    >>> judge(Interval(1.1, 1.0, 1.3, 0.95, "t", 5), "faster", above=1.2).status
    'inconclusive'
    >>> judge(Interval(0.9, 0.8, 1.0, 0.95, "t", 5), "faster", above=1.2).status
    'does not hold'
    >>> judge(Interval(1.6, 1.5, 1.7, 0.95, "t", 5), "2 threads beat 1", above=1.2,
    ...       needs_cpus=1e6).status  # no machine has a million CPUs: it cannot be shown
    'inconclusive'
    """
    if not isinstance(interval, Interval):
        raise TypeError(f"judge(interval={interval!r}): expected an Interval from "
                        "mlscale_lab.evidence (mean_interval, bootstrap_interval, ...)")
    if above is None and below is None:
        raise ValueError("judge(): give the claim's bound: above=..., below=... or both")
    if above is not None and below is not None and not above < below:
        raise ValueError(f"judge(above={above!r}, below={below!r}): expected above < below")
    machine = _machine_report(machine)
    lo, hi = interval.low, interval.high
    inside = (above is None or lo > above) and (below is None or hi < below)
    outside = (above is not None and hi <= above) or (below is not None and lo >= below)
    bounds = " and ".join(f"{word} {_fmt(b)}" for word, b in (("above", above), ("below", below))
                          if b is not None)
    if inside:
        status, reason = HOLDS, f"the interval lies {bounds}"
    elif outside:
        side = "below" if above is not None and hi <= above else "above"
        edge = above if side == "below" else below
        status, reason = REFUTED, f"the interval lies {side} {_fmt(edge)}"
    else:
        straddled = [b for b in (above, below) if b is not None and lo <= b <= hi]
        status = INCONCLUSIVE
        reason = (f"the interval straddles {_fmt(straddled[0])}: these measurements cannot tell; "
                  "more of them, or a quieter machine, could")
    cpus = _cpus(machine) if needs_cpus is not None else None
    if cpus is not None and cpus < needs_cpus:
        reason = (f"would read '{status}', but this machine cannot show it: {cpus:g} CPU(s) "
                  f"only, and the claim needs {needs_cpus:g} (the threads or workers took turns "
                  "on the CPUs there are); run it on a machine with more")
        return Verdict(INCONCLUSIVE, claim, reason, interval, machine)
    if machine is not None and not machine.trusted:
        why = "; ".join(machine.reasons) or "the machine was busy"
        if status == REFUTED or (status == HOLDS and noise_favours_claim):
            reason = f"would read '{status}', but this machine cannot be trusted now: {why}"
            status = INCONCLUSIVE
        elif status == INCONCLUSIVE:
            # a wide interval on an untrusted machine: say both, the machine is the likelier cause
            reason = f"{reason}; and this machine cannot be trusted now: {why}"
    return Verdict(status, claim, reason, interval, machine)


def _machine_report(machine):
    """A MachineReport from what the caller passed: a report, a finished MachineCheck, or None."""
    if machine is None:
        return None
    report = getattr(machine, "report", machine)  # a MachineCheck hands over its report
    if not (hasattr(report, "trusted") and hasattr(report, "reasons")):
        raise TypeError(f"judge(machine={machine!r}): expected the MachineReport of a MachineCheck "
                        "(`mc.report` after `with MachineCheck() as mc:`), or None")
    return report


def _cpus(machine) -> float:
    cpus = getattr(machine, "cpus", None)
    if cpus is None:
        from mlscale_lab.evidence._machine import machine_cpus

        cpus = machine_cpus()
    return float(cpus)


def checkpoint(verdict: Verdict) -> Verdict:
    """Print ``verdict`` for the learner; fail only when its claim does not hold.

    For a lab's checkpoint cells: a claim that holds passes, an inconclusive one passes and says
    why (a busy or one-CPU machine is not the lab's fault), and a claim that does not hold on a
    machine judged fine stops the notebook with the evidence.

    >>> from mlscale_lab.evidence import Interval
    >>> v = checkpoint(judge(Interval(3.9, 3.8, 4.0, 0.95, "t", 9), "int8 is 3.5x smaller", above=3.5))
    holds: int8 is 3.5x smaller. Measured 3.9 (95 % CI 3.8 to 4, t, n=9): the interval lies above 3.5.
    >>> checkpoint(judge(Interval(1.0, 0.9, 1.1, 0.95, "t", 9), "faster", above=1.5))
    Traceback (most recent call last):
    ...
    AssertionError: does not hold: faster. Measured 1 (95 % CI 0.9 to 1.1, t, n=9): the interval lies below 1.5.
    """
    if not isinstance(verdict, Verdict):
        raise TypeError(f"checkpoint(verdict={verdict!r}): expected a Verdict from judge()")
    print(verdict)
    if verdict.refuted:
        raise AssertionError(str(verdict))
    return verdict
