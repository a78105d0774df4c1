"""Does a training-memory estimate hold? Its training parts against the memory training added.

A training process's peak is mostly the interpreter and torch (a few hundred MB) before the
first weight: held against that total, an estimate whose training parts were zero, or three
times too big, would still land within 25 %. The claim worth checking is the one about the
model: the estimated weights, gradients, optimizer state, activations and temporaries against
how far the process's resident memory rose while it built the model and trained
(:attr:`~mlscale_lab.constraints.TrainingPeak.peak_rise_bytes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlscale_lab.validation import check_number

if TYPE_CHECKING:
    from mlscale_lab.evidence import Verdict

__all__ = ["ESTIMATE_WITHIN", "judge_training_estimate"]

#: How close the estimate's training parts must come to the measured rise (estimate / measured):
#: a quarter either way, as a ratio (1 / 0.75 = 1.33).
ESTIMATE_WITHIN = (0.75, 1.33)


def judge_training_estimate(estimate, peak, *, within: tuple[float, float] = ESTIMATE_WITHIN,
                            batch_size: int | None = None) -> Verdict:
    """Hold ``estimate``'s training parts to ``peak``'s measured rise: a three-valued verdict.

    Parameters
    ----------
    estimate : TrainingMemoryEstimate
        From :func:`~mlscale_lab.constraints.estimate_training_memory` (the baseline, if
        given, is left out: only :attr:`~TrainingMemoryEstimate.training_bytes` counts).
    peak : TrainingPeak
        From :func:`~mlscale_lab.constraints.measure_training_peak` on the same model,
        optimizer and batch.
    within : (float, float), default (0.75, 1.33)
        The range the ratio estimate / measured must lie in.
    batch_size : int, optional
        Named in the claim.

    Returns
    -------
    Verdict
        Holds when the ratio lies inside ``within``, does not hold outside it. The rise is one
        measurement of a fresh process whose allocator returns freed tensors at once
        (:attr:`~mlscale_lab.constraints.TrainingPeak.repeatable`): fresh processes then repeat
        it to within a megabyte, so the ratio carries no sampling interval. Where the allocator
        could not be set so (not Linux with glibc), freed blocks stay resident by amounts that
        vary from run to run, and a ratio outside the range is inconclusive, not a refutation.

    Examples
    --------
    >>> from mlscale_lab.constraints import TIGHT_ALLOCATOR, TrainingMemoryEstimate, TrainingPeak
    >>> est = TrainingMemoryEstimate(40, 40, 80, 30, 5, 20, 2, baseline_bytes=3000)
    >>> print(judge_training_estimate(est, TrainingPeak(200, 3000, 3200, 2, TIGHT_ALLOCATOR)).status)
    holds
    >>> print(judge_training_estimate(est, TrainingPeak(600, 3000, 3600, 2, TIGHT_ALLOCATOR)).status)
    does not hold
    >>> print(judge_training_estimate(est, TrainingPeak(600, 3000, 3600, 2)).status)
    inconclusive
    """
    # numpy and scipy: not at import time
    from mlscale_lab.evidence import INCONCLUSIVE, Interval, Verdict, judge

    func = "judge_training_estimate"
    for name, value in (("estimate", estimate), ("peak", peak)):
        wanted = "training_bytes" if name == "estimate" else "peak_rise_bytes"
        if not hasattr(value, wanted):
            raise TypeError(f"{func}({name}={value!r}): expected a "
                            f"{'TrainingMemoryEstimate' if name == 'estimate' else 'TrainingPeak'}"
                            f" (it has no {wanted})")
    low, high = (check_number(func, "within", w, low=0, low_open=True) for w in within)
    if not low < 1 < high:
        raise ValueError(f"{func}(within={within!r}): expected a range around 1, such as "
                         "(0.75, 1.33)")
    rise = peak.peak_rise_bytes
    if rise <= 0:
        raise ValueError(f"{func}(peak=...): the measured rise is {rise} bytes: the training "
                         "process did not grow, so there is nothing to hold the estimate to")
    ratio = estimate.training_bytes / rise
    evidence = Interval.exact(ratio, "estimate / measured rise, one fresh training process")
    at = f" at batch size {batch_size}" if batch_size is not None else ""
    claim = (f"the estimated training parts{at} ({estimate.training_bytes / 2**20:.1f} MB) are "
             f"within {low:g}x to {high:g}x of what training added ({rise / 2**20:.1f} MB)")
    verdict = judge(evidence, claim, above=low, below=high)
    if verdict.refuted and not getattr(peak, "repeatable", False):
        return Verdict(INCONCLUSIVE, claim,
                       f"would read '{verdict.status}' ({verdict.reason}), but the measuring "
                       f"process ran on {peak.allocator}, which keeps freed blocks resident by "
                       "amounts that vary from run to run (Linux with glibc lets the measurement "
                       "fix that)", evidence)
    return verdict
