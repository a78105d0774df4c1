"""ADWIN, adaptive windowing: keep recent values, drop the old part when it differs.

Bifet and Gavaldà (2007), in a short readable form; River's ``river.drift.ADWIN`` is the
production version. Same protocol as every detector here: ``update(x)``, then ``drift_detected``.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.validation import check_int, check_number


class Adwin:
    """ADWIN-style detector (Bifet & Gavaldà, 2007): an adaptive window of recent values that
    drops its older part when the two parts' means differ by more than chance allows.

    Every ``clock`` values, each split of the window into an older part (``n0`` values, mean
    ``mu0``) and a newer part (``n1``, ``mu1``) is tested with the bound
    ``eps = sqrt(2 / m * var * ln(2 / d)) + 2 / (3 m) * ln(2 / d)``, where
    ``m = 1 / (1 / n0 + 1 / n1)``, ``var`` is the window's variance and ``d = delta / ln(n)``.
    A split with ``|mu0 - mu1| > eps`` is a drift: the older part is dropped. This version keeps
    the values themselves (at most ``max_window``, in a numpy buffer) instead of ADWIN's
    exponential histogram, and tests at most ``max_splits`` evenly spaced splits (ADWIN's
    histogram tests one per bucket, a few dozen), so it is easy to read and fast enough to score
    over many streams.

    Parameters
    ----------
    delta : float in (0, 1), default 0.002
        Confidence: smaller means fewer false alarms and later detection.
    clock : int, default 32
        Test the splits every ``clock`` values.
    max_window : int, default 5000
        Oldest values beyond this are forgotten.
    min_side : int, default 10
        Fewest values on each side of a tested split.
    max_splits : int, default 256
        Splits tested at most at each check, evenly spaced over the window.

    Attributes
    ----------
    window : ndarray
        The values kept now, oldest first (a read-only view).
    drift_detected : bool
        Whether the last value given to :meth:`update` made the window drop its older part.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
    >>> from mlscale_lab.deployment import detect_drifts
    >>> alarms = detect_drifts(Adwin(), errors)
    >>> len(alarms), 3000 <= alarms[0] < 3300
    (1, True)
    """

    def __init__(
        self, delta: float = 0.002, clock: int = 32, max_window: int = 5000, min_side: int = 10,
        max_splits: int = 256,
    ):
        fn = "Adwin"
        self.delta = check_number(fn, "delta", delta, low=0, high=1, low_open=True, high_open=True)
        self.clock = check_int(fn, "clock", clock, low=1)
        self.max_window = check_int(fn, "max_window", max_window, low=2)
        self.min_side = check_int(
            fn, "min_side", min_side, low=1, high=self.max_window // 2,
            hint=f"each side of a split needs min_side values within max_window={self.max_window}",
        )
        self.max_splits = check_int(fn, "max_splits", max_splits, low=1)
        # the window is _buf[_start:_end]; values go in at _end, and the window slides back to
        # the front of the buffer only when _end reaches its end
        self._buf = np.empty(2 * self.max_window)
        self._start = self._end = 0
        self.drift_detected = False
        self._since_check = 0

    @property
    def window(self) -> np.ndarray:
        """The values kept now, oldest first."""
        view = self._buf[self._start : self._end]
        view.flags.writeable = False
        return view

    @property
    def width(self) -> int:
        """Values in the window now.

        Examples
        --------
        >>> ad = Adwin()
        >>> for x in (0.0, 1.0, 0.0):
        ...     ad.update(x)
        >>> ad.width
        3
        """
        return self._end - self._start

    def update(self, x: float) -> None:
        """Add one value; afterwards ``drift_detected`` says whether the window dropped its
        older part (River's protocol: nothing is returned).

        Parameters
        ----------
        x : float
            The next value.

        Examples
        --------
        >>> ad = Adwin(clock=1)
        >>> for x in [0.0] * 100 + [1.0] * 40:
        ...     ad.update(x)
        ...     if ad.drift_detected:
        ...         break
        >>> ad.drift_detected, ad.width < 140
        (True, True)
        """
        if self._end == self._buf.size:
            kept = self._end - self._start
            self._buf[:kept] = self._buf[self._start : self._end]
            self._start, self._end = 0, kept
        self._buf[self._end] = float(x)
        self._end += 1
        if self._end - self._start > self.max_window:
            self._start += 1
        self._since_check += 1
        self.drift_detected = False
        if self._since_check >= self.clock and self.width >= 2 * self.min_side:
            self._since_check = 0
            cut = self._find_cut()
            if cut is not None:
                self._start += cut
                self.drift_detected = True

    def _find_cut(self) -> int | None:
        w = self._buf[self._start : self._end]
        n = w.size
        csum = np.cumsum(w)
        step = max(1, (n - 2 * self.min_side + 1) // self.max_splits)
        n0 = np.arange(self.min_side, n - self.min_side + 1, step)
        n1 = n - n0
        mu0 = csum[n0 - 1] / n0
        mu1 = (csum[-1] - csum[n0 - 1]) / n1
        m = 1.0 / (1.0 / n0 + 1.0 / n1)
        d = self.delta / np.log(n)
        var = w.var()
        eps = np.sqrt(2.0 / m * var * np.log(2.0 / d)) + 2.0 / (3.0 * m) * np.log(2.0 / d)
        over = np.nonzero(np.abs(mu0 - mu1) > eps)[0]
        # Drop the largest older part that differs: everything before the last significant split.
        return int(n0[over[-1]]) if over.size else None

    def __repr__(self) -> str:
        return (f"Adwin(delta={self.delta:g}, clock={self.clock}, max_window={self.max_window}, "
                f"min_side={self.min_side}, max_splits={self.max_splits})")
