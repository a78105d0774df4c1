"""Device profiles and compression recipes: which measured model fits which device.

A *recipe* is one way of compressing and serving the model, with what it was measured to cost:
bytes to download, bytes of weights held in memory while serving, batch-1 latency, batch-256
throughput, accuracy. A *device profile* puts limits on some of these (a phone: download,
memory and one-prediction latency; a server: throughput). The recipe to ship is the most
accurate one that meets every limit; on a tie, the smaller download.

Download and memory differ: a deep-compressed file is small on disk, but its weights are
decoded to dense float32 to run, so it needs as much memory as the uncompressed model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlscale_lab.validation import check_number


@dataclass(frozen=True)
class Recipe:
    """One compressed model as measured.

    Attributes
    ----------
    name : str
    file_bytes : int
        Bytes of the artifact to ship (download, disk).
    memory_bytes : int
        Bytes of weights the runtime holds while serving.
    latency_ms : float
        Median latency of one prediction at batch 1.
    throughput : float
        Rows per second at batch 256.
    accuracy : float
        Test accuracy in percent.
    """

    name: str
    file_bytes: int
    memory_bytes: int
    latency_ms: float
    throughput: float
    accuracy: float

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


@dataclass(frozen=True)
class DeviceProfile:
    """Limits a device puts on a recipe; None leaves a limit out.

    Attributes
    ----------
    name : str
    max_file_bytes, max_memory_bytes : int or None
        At most this many bytes to download / to hold in memory.
    max_latency_ms : float or None
        At most this median batch-1 latency.
    min_throughput : float or None
        At least this many rows per second at batch 256.
    """

    name: str
    max_file_bytes: int | None = None
    max_memory_bytes: int | None = None
    max_latency_ms: float | None = None
    min_throughput: float | None = None

    def __post_init__(self):
        for field in ("max_file_bytes", "max_memory_bytes", "max_latency_ms", "min_throughput"):
            value = getattr(self, field)
            if value is not None:
                check_number("DeviceProfile", field, value, low=0, low_open=True)

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


def violations(recipe: Recipe, profile: DeviceProfile) -> list[str]:
    """The limits of ``profile`` that ``recipe`` breaks, as readable strings ([] if it fits).

    A value exactly at a limit meets it ("at most", "at least").

    Examples
    --------
    >>> r = Recipe("int8", 1_100_000, 1_100_000, 0.2, 150_000.0, 97.5)
    >>> violations(r, DeviceProfile("phone", max_file_bytes=500_000, max_latency_ms=0.2))
    ['file 1,100,000 B > 500,000 B']
    """
    out = []
    if profile.max_file_bytes is not None and recipe.file_bytes > profile.max_file_bytes:
        out.append(f"file {recipe.file_bytes:,} B > {profile.max_file_bytes:,} B")
    if profile.max_memory_bytes is not None and recipe.memory_bytes > profile.max_memory_bytes:
        out.append(f"memory {recipe.memory_bytes:,} B > {profile.max_memory_bytes:,} B")
    if profile.max_latency_ms is not None and recipe.latency_ms > profile.max_latency_ms:
        out.append(f"latency {recipe.latency_ms:.3f} ms > {profile.max_latency_ms:.3f} ms")
    if profile.min_throughput is not None and recipe.throughput < profile.min_throughput:
        out.append(f"throughput {recipe.throughput:,.0f}/s < {profile.min_throughput:,.0f}/s")
    return out


def choose_recipe(recipes, profile: DeviceProfile) -> Recipe | None:
    """The most accurate recipe that meets every limit of ``profile`` (ties: smaller file).

    Returns None when no recipe fits.

    Examples
    --------
    >>> rs = [Recipe("fp32", 4_500_000, 4_500_000, 0.25, 50_000.0, 97.8),
    ...       Recipe("int8", 1_100_000, 1_100_000, 0.10, 120_000.0, 97.6),
    ...       Recipe("student", 10_000, 10_000, 0.02, 900_000.0, 95.0)]
    >>> choose_recipe(rs, DeviceProfile("phone", max_file_bytes=2_000_000)).name
    'int8'
    >>> choose_recipe(rs, DeviceProfile("watch", max_memory_bytes=1_000)) is None
    True
    """
    if not isinstance(profile, DeviceProfile):
        raise TypeError(f"choose_recipe(profile={profile!r}): expected a DeviceProfile, "
                        f"got {type(profile).__name__}")
    fitting = [r for r in recipes if not violations(r, profile)]
    if not fitting:
        return None
    return max(fitting, key=lambda r: (r.accuracy, -r.file_bytes))


def headroom(recipe: Recipe, profile: DeviceProfile) -> float:
    """The smallest ratio of limit to use over the profile's limits (above 1: room to spare).

    ``inf`` for a profile without limits.

    Examples
    --------
    >>> r = Recipe("int8", 1_000, 1_000, 0.5, 100.0, 97.0)
    >>> headroom(r, DeviceProfile("p", max_file_bytes=2_000, min_throughput=150.0))
    0.6666666666666666
    """
    ratios = []
    if profile.max_file_bytes is not None:
        ratios.append(profile.max_file_bytes / max(recipe.file_bytes, 1))
    if profile.max_memory_bytes is not None:
        ratios.append(profile.max_memory_bytes / max(recipe.memory_bytes, 1))
    if profile.max_latency_ms is not None:
        ratios.append(profile.max_latency_ms / max(recipe.latency_ms, 1e-12))
    if profile.min_throughput is not None:
        ratios.append(recipe.throughput / profile.min_throughput)
    return min(ratios) if ratios else math.inf
