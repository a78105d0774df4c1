"""One price list for every lab: example machine sizes with example hourly prices.

These are **example prices, not a quote from any provider**. They follow the shape of public
cloud price lists (a general-purpose machine costs about the same per vCPU-hour and per
GiB-hour whatever its size, so doubling a machine doubles its price), with the rates below
in US dollars. Pass your own provider's list wherever a lab takes ``machines=``; the lessons
(which size wins, when N small beat one big) are about the shape, not the cents.

>>> m = machine("large")
>>> (m.vcpus, m.memory_gib, m.usd_per_hour)
(2, 8.0, 0.102)
>>> [m.name for m in EXAMPLE_MACHINES][:3]
['nano', 'micro', 'small']
"""

from __future__ import annotations

from dataclasses import dataclass

from mlscale_lab.validation import check_choice, check_int, check_number

__all__ = [
    "EXAMPLE_MACHINES", "HOURS_PER_MONTH", "PRICE_UNIT", "USD_PER_GIB_HOUR", "USD_PER_VCPU_HOUR",
    "Machine", "cost_per_1k", "example_machines", "machine", "monthly_cost",
]

#: Example rates (US dollars); roughly a general-purpose cloud machine's.
USD_PER_VCPU_HOUR = 0.033
USD_PER_GIB_HOUR = 0.0045
#: The unit every price in the package is given in.
PRICE_UNIT = "USD per hour (example prices, not a provider's quote)"
HOURS_PER_MONTH = 730.0  # 365 * 24 / 12, the month cloud bills use

_GIB = 1024**3


@dataclass(frozen=True)
class Machine:
    """A machine size on a price list.

    Attributes
    ----------
    name : str
    vcpus : int
        Virtual CPUs (one hyper-thread each, as clouds count them).
    memory_bytes : int
    usd_per_hour : float
        Example price in US dollars per hour of running.
    """

    name: str
    vcpus: int
    memory_bytes: int
    usd_per_hour: float

    @property
    def memory_gib(self) -> float:
        """Memory in GiB."""
        return self.memory_bytes / _GIB

    @property
    def usd_per_month(self) -> float:
        """The price of running it all month (730 hours).

        >>> round(machine("small").usd_per_month, 2)
        30.66
        """
        return self.usd_per_hour * HOURS_PER_MONTH

    def __str__(self) -> str:
        return (f"{self.name} ({self.vcpus} vCPU, {self.memory_gib:g} GiB, "
                f"${self.usd_per_hour:.3f}/h example)")


_SHAPES = (  # name, vCPUs, GiB
    ("nano", 1, 0.5),
    ("micro", 1, 1),
    ("small", 1, 2),
    ("medium", 2, 4),
    ("large", 2, 8),
    ("xlarge", 4, 16),
    ("2xlarge", 8, 32),
    ("4xlarge", 16, 64),
    ("memory-4xlarge", 16, 256),
)


def example_machines(usd_per_vcpu_hour: float = USD_PER_VCPU_HOUR,
                     usd_per_gib_hour: float = USD_PER_GIB_HOUR) -> tuple[Machine, ...]:
    """The example sizes priced per vCPU-hour and per GiB-hour (change the rates to try yours).

    Returns
    -------
    tuple of Machine
        From smallest to largest.

    Examples
    --------
    >>> cheap = example_machines(usd_per_vcpu_hour=0.01, usd_per_gib_hour=0.001)
    >>> cheap[0].usd_per_hour
    0.0105
    """
    for name, value in (("usd_per_vcpu_hour", usd_per_vcpu_hour),
                        ("usd_per_gib_hour", usd_per_gib_hour)):
        check_number("example_machines", name, value, low=0)
    return tuple(
        Machine(name, vcpus, int(gib * _GIB), round(vcpus * usd_per_vcpu_hour + gib * usd_per_gib_hour, 4))
        for name, vcpus, gib in _SHAPES
    )


#: The default list every lab uses.
EXAMPLE_MACHINES = example_machines()


def machine(name: str) -> Machine:
    """The example machine called ``name``.

    >>> machine("xlarge").vcpus
    4
    """
    check_choice("machine", "name", name, [m.name for m in EXAMPLE_MACHINES])
    return next(m for m in EXAMPLE_MACHINES if m.name == name)


def cost_per_1k(usd_per_hour: float, predictions_per_second: float) -> float:
    """Dollars per 1,000 predictions for a machine kept busy at ``predictions_per_second``.

    >>> round(cost_per_1k(0.036, 10.0), 6)
    0.001
    """
    check_number("cost_per_1k", "usd_per_hour", usd_per_hour, low=0)
    check_number("cost_per_1k", "predictions_per_second", predictions_per_second, low=0,
                 low_open=True)
    return usd_per_hour / 3600.0 / predictions_per_second * 1000.0


def monthly_cost(usd_per_hour: float, replicas: int = 1) -> float:
    """Dollars a month for ``replicas`` machines at ``usd_per_hour`` each.

    >>> round(monthly_cost(0.1, replicas=3), 1)
    219.0
    """
    check_number("monthly_cost", "usd_per_hour", usd_per_hour, low=0)
    check_int("monthly_cost", "replicas", replicas, low=0)
    return usd_per_hour * HOURS_PER_MONTH * replicas
