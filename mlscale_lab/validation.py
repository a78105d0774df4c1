"""Arguments checked at the door: one helper per kind of value, one shape of message.

Every message names the function the learner called, the parameter, the value it got and what
is allowed, so the fix is in the message:

>>> check_int("erlang_c", "servers", 0, low=1)
Traceback (most recent call last):
...
ValueError: erlang_c(servers=0): expected a whole number >= 1, got 0

One exception type per kind of mistake: a value of the wrong type (a string where a number
goes, a float where a count goes) raises :class:`TypeError`; a value of the right type outside
what is allowed raises :class:`ValueError`.

>>> check_number("mmc_mean_wait", "service_rate", 2.5, low=0, low_open=True)
2.5
>>> check_choice("make_selector", "method", "chi2", ("chi2", "f_test"))
'chi2'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

__all__ = ["check_choice", "check_fraction", "check_int", "check_number", "check_positive"]


def _bounds(low, high, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def _fail(func: str, name: str, value, allowed: str, kind: type[Exception], hint: str = ""):
    message = f"{func}({name}={value!r}): expected {allowed}, got {value!r}"
    raise kind(message + (f"; {hint}" if hint else ""))


def check_number(func: str, name: str, value, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 hint: str = "") -> float:
    """A finite real number within ``[low, high]`` (ends open when ``*_open``), as a float.

    Parameters
    ----------
    func, name : str
        The public function the learner called and the parameter, for the message.
    value : object
        What the learner passed.
    low, high : float, optional
        Bounds; None leaves that side open.
    low_open, high_open : bool
        Exclude the bound itself (``> 0`` rather than ``>= 0``).
    hint : str
        A sentence appended to the message: how to fix it.

    Returns
    -------
    float

    Examples
    --------
    >>> check_number("f", "rate", 3)
    3.0
    >>> check_number("f", "rate", "3")
    Traceback (most recent call last):
    ...
    TypeError: f(rate='3'): expected a finite number, got '3'
    """
    bounds = _bounds(low, high, low_open, high_open)
    allowed = "a finite number" + (f" {bounds}" if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(func, name, value, allowed, TypeError, hint)
    x = float(value)
    if not math.isfinite(x):
        _fail(func, name, value, allowed, ValueError, hint)
    if low is not None and (x < low or (low_open and x == low)):
        _fail(func, name, value, allowed, ValueError, hint)
    if high is not None and (x > high or (high_open and x == high)):
        _fail(func, name, value, allowed, ValueError, hint)
    return x


def check_positive(func: str, name: str, value, *, hint: str = "") -> float:
    """A finite number > 0, as a float.

    >>> check_positive("mm1_mean_wait", "arrival_rate", -1)
    Traceback (most recent call last):
    ...
    ValueError: mm1_mean_wait(arrival_rate=-1): expected a finite number > 0, got -1
    """
    return check_number(func, name, value, low=0, low_open=True, hint=hint)


def check_fraction(func: str, name: str, value, *, low_open: bool = False,
                   high_open: bool = False, hint: str = "") -> float:
    """A number in ``[0, 1]`` (ends open on request), as a float.

    >>> check_fraction("prune", "amount", 0.5)
    0.5
    """
    return check_number(func, name, value, low=0, high=1, low_open=low_open,
                        high_open=high_open, hint=hint)


def check_int(func: str, name: str, value, *, low: int | None = None,
              high: int | None = None, hint: str = "") -> int:
    """A whole number (not a bool, not a float) within ``[low, high]``, as an int.

    >>> check_int("make_stream", "n_samples", 2.0)
    Traceback (most recent call last):
    ...
    TypeError: make_stream(n_samples=2.0): expected a whole number, got 2.0
    """
    bounds = _bounds(low, high, False, False)
    allowed = "a whole number" + (f" {bounds}" if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(func, name, value, "a whole number", TypeError, hint)
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(func, name, value, allowed, ValueError, hint)
    return int(value)


def check_choice(func: str, name: str, value, choices: Iterable, *, hint: str = ""):
    """One of ``choices``, returned unchanged.

    >>> check_choice("simulate_balancer", "policy", "fastest", ("random", "round_robin"))
    Traceback (most recent call last):
    ...
    ValueError: simulate_balancer(policy='fastest'): expected one of 'random', 'round_robin', got 'fastest'
    """
    options = tuple(choices)
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a set-like
        ok = False
    if not ok:
        allowed = "one of " + ", ".join(repr(c) for c in options)
        _fail(func, name, value, allowed, ValueError, hint)
    return value
