"""The evidence core: every comparison a lab shows, with its uncertainty and a verdict.

A lab that says "int8 is 4x smaller", "two workers are 1.7x faster" or "the queue matches
M/M/c" makes a claim about a quantity it measured on noisy data. This package turns the data
into an interval and the interval into one of three verdicts a learner can trust:

- **holds**: the whole interval lies where the claim says;
- **does not hold**: the whole interval lies outside it;
- **inconclusive**: the interval straddles the bound, or the machine was too busy to trust
  (other processes took the CPU, the hypervisor stole time, the container was throttled, the
  load generator ran late), and the verdict says which.

The pieces, one idea a module:

- intervals (:func:`mean_interval`, :func:`bootstrap_interval`, :func:`proportion_interval`,
  :func:`quantile_interval`, :func:`batch_means_interval`, :func:`block_bootstrap_interval`,
  :func:`ratio_interval`), on
  scipy's statistics;
- two models on the same rows or seeds (:func:`paired_interval`, :func:`paired_bootstrap`,
  :func:`mcnemar`);
- scores over overlapping cross-validation folds (:func:`resampled_interval`, the corrected
  resampled t of Nadeau and Bengio);
- timings taken A B A B on the same machine state (:func:`interleave`);
- the machine itself while measuring (:class:`MachineCheck`);
- the verdict (:func:`judge`, :class:`Verdict`) and the checkpoint cells use
  (:func:`checkpoint`).

>>> from mlscale_lab.evidence import judge, proportion_interval
>>> acc = proportion_interval(441, 450)
>>> print(judge(acc, "accuracy is above 95 %", above=0.95))
holds: accuracy is above 95 %. Measured 0.98 (95 % CI 0.962 to 0.991, exact binomial, n=450): the interval lies above 0.95.
"""

from mlscale_lab.evidence._intervals import (
    Interval,
    NotEnoughData,
    batch_means_interval,
    block_bootstrap_interval,
    bootstrap_interval,
    mean_interval,
    proportion_interval,
    quantile_interval,
    ratio_interval,
    samples_for_quantile,
)
from mlscale_lab.evidence._machine import MachineCheck, MachineReport, machine_cpus
from mlscale_lab.evidence._paired import McNemar, mcnemar, paired_bootstrap, paired_interval
from mlscale_lab.evidence._resampled import resampled_interval, resampled_se
from mlscale_lab.evidence._timing import Timings, interleave
from mlscale_lab.evidence._verdict import (
    HOLDS,
    INCONCLUSIVE,
    REFUTED,
    Verdict,
    checkpoint,
    judge,
)

__all__ = [
    "HOLDS",
    "INCONCLUSIVE",
    "Interval",
    "MachineCheck",
    "MachineReport",
    "McNemar",
    "NotEnoughData",
    "REFUTED",
    "Timings",
    "Verdict",
    "batch_means_interval",
    "block_bootstrap_interval",
    "bootstrap_interval",
    "checkpoint",
    "interleave",
    "judge",
    "machine_cpus",
    "mcnemar",
    "mean_interval",
    "paired_bootstrap",
    "paired_interval",
    "proportion_interval",
    "quantile_interval",
    "ratio_interval",
    "resampled_interval",
    "resampled_se",
    "samples_for_quantile",
]
