"""The command line's argument types: sizes, seconds and counts, checked as argparse reads them.

A bad value is an argparse error (usage and one line, exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse


def parse_size(text: str) -> int:
    """A memory size in bytes from ``"2G"``, ``"1536M"``, ``"512MiB"`` or ``"2147483648"``.

    Units are binary (K = 1024), as Binder's and the kernels' limits are.

    Examples
    --------
    >>> parse_size("2G")
    2147483648
    >>> parse_size("1.5 GiB")
    1610612736
    >>> parse_size("lots")
    Traceback (most recent call last):
    ...
    ValueError: parse_size(text='lots'): expected bytes or a number with K, M, G or T (e.g. 2G), got 'lots'
    """
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = str(text).strip().upper().replace(" ", "").removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units else ""
    number = raw[: -len(unit)] if unit else raw
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"parse_size(text={text!r}): expected bytes or a number with K, M, G or T "
                         f"(e.g. 2G), got {text!r}")
    return int(value * units.get(unit, 1))


def size_arg(text: str) -> int:
    """``--memory-limit``: a size such as 2G, as bytes."""
    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write bytes or a number with "
                                         "K, M, G or T (e.g. 2G)") from None


def memory_cap_arg(text: str) -> int | None:
    """``--memory``: a size, or 0 / none for no cap."""
    if str(text).strip().lower() in ("0", "none", "off"):
        return None
    size = size_arg(text)
    if size < 64 * 1024**2:
        raise argparse.ArgumentTypeError(f"{text!r} is under 64M, too little for a Python kernel; "
                                         "give e.g. 2G, or 0 for no cap")
    return size


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
    return value


def seconds_arg(text: str) -> float:
    """``--timeout``, ``--budget``: a number of seconds > 0."""
    return _positive(text, "a number of seconds")


def cpus_arg(text: str) -> float:
    """``--cpus``: a number of CPUs > 0 (0.5 is half of one, as in a container's quota)."""
    return _positive(text, "a number of CPUs (e.g. 1 or 0.5)")


def count_arg(text: str) -> int:
    """``--workers``: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def seed_arg(text: str) -> int:
    """``--seed``: a whole number >= 0, as the library's ``seed`` parameters take."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)
