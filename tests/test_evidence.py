"""The evidence core: each interval covers what it claims to on simulated data, verdicts follow
the interval, and the machine check tells a busy machine from a quiet one."""

import subprocess
import sys
import time

import numpy as np
import pytest

from mlscale_lab.evidence import (
    HOLDS,
    INCONCLUSIVE,
    REFUTED,
    Interval,
    MachineCheck,
    NotEnoughData,
    batch_means_interval,
    block_bootstrap_interval,
    bootstrap_interval,
    checkpoint,
    interleave,
    judge,
    machine_cpus,
    mcnemar,
    mean_interval,
    paired_bootstrap,
    paired_interval,
    proportion_interval,
    quantile_interval,
    ratio_interval,
    resampled_interval,
    resampled_se,
    samples_for_quantile,
)


def _coverage(make_interval, truth, trials, seed=0):
    rng = np.random.default_rng(seed)
    hits = sum(make_interval(rng).contains(truth) for _ in range(trials))
    return hits / trials


# --- intervals cover what they claim -------------------------------------------------------

def test_mean_interval_covers_95_percent_of_the_time():
    cov = _coverage(lambda rng: mean_interval(rng.normal(10, 2, 8)), 10.0, 2000)
    assert 0.935 < cov < 0.965, cov


def test_a_90_percent_interval_covers_less_and_is_narrower():
    x = np.random.default_rng(1).normal(0, 1, 30)
    assert mean_interval(x, 0.9).width < mean_interval(x, 0.95).width
    cov = _coverage(lambda rng: mean_interval(rng.normal(0, 1, 8), 0.9), 0.0, 2000)
    assert 0.88 < cov < 0.92, cov


def test_exact_binomial_interval_never_covers_less_than_its_level():
    from scipy.stats import binom

    # an accuracy of 97.5 % (and 80 %) on 450 test images: coverage summed exactly over the counts
    for p in (0.975, 0.8):
        ks = range(int(450 * p) - 40, min(450, int(450 * p) + 40) + 1)
        cov = sum(binom.pmf(k, 450, p) for k in ks if proportion_interval(k, 450).contains(p))
        assert 0.95 <= cov < 0.985, (p, cov)


def test_quantile_interval_covers_the_true_p99_from_enough_requests():
    p99 = -np.log(0.01)  # of Exp(1)
    cov = _coverage(lambda rng: quantile_interval(rng.exponential(1.0, 1000), 0.99), p99, 1000)
    assert cov >= 0.94, cov


def test_a_p99_from_too_few_requests_is_refused_with_how_many_it_needs():
    need = samples_for_quantile(0.99)
    x = np.random.default_rng(0).exponential(1.0, need)
    assert quantile_interval(x, 0.99).n == need
    with pytest.raises(NotEnoughData, match=f"at least {need}"):
        quantile_interval(x[: need - 1], 0.99)
    # the p95 needs far fewer; the median fewer still
    assert samples_for_quantile(0.5) < samples_for_quantile(0.95) < need


def test_bootstrap_interval_of_a_median_covers_near_its_level():
    truth = np.log(2)  # median of Exp(1)
    cov = _coverage(lambda rng: bootstrap_interval(rng.exponential(1.0, 60), n_resamples=500),
                    truth, 400)
    assert 0.9 < cov < 0.99, cov


def test_bootstrap_is_deterministic_for_a_seed_and_handles_equal_values():
    x = [3.0, 1.0, 2.0, 5.0, 4.0, 2.5, 3.5]
    assert bootstrap_interval(x, seed=3) == bootstrap_interval(x, seed=3)
    same = bootstrap_interval([2.0] * 10)
    assert same.low == same.high == 2.0


def test_paired_ratio_sees_through_a_slow_machine_that_unpaired_cannot():
    # each round's machine state slows both arms alike (a neighbour, a frequency dip)
    rng = np.random.default_rng(4)
    state = rng.lognormal(0, 0.4, 40)
    slow = 2.0 * state * rng.lognormal(0, 0.02, 40)
    fast = 1.0 * state * rng.lognormal(0, 0.02, 40)
    paired = ratio_interval(slow, fast, paired=True)
    unpaired = ratio_interval(slow, fast, paired=False)
    assert paired.contains(2.0)
    assert paired.width * 5 < unpaired.width


def test_paired_ratio_covers_the_true_ratio():
    def make(rng):
        state = rng.lognormal(0, 0.3, 25)
        return ratio_interval(1.5 * state * rng.lognormal(0, 0.05, 25),
                              state * rng.lognormal(0, 0.05, 25), n_resamples=500)

    assert _coverage(make, 1.5, 300) > 0.88


def test_batch_means_cover_the_mean_of_a_correlated_series_where_iid_intervals_do_not():
    def ar1(rng, n=4000, phi=0.95):
        e = rng.normal(0, 1, n)
        x = np.empty(n)
        x[0] = e[0]
        for i in range(1, n):
            x[i] = phi * x[i - 1] + e[i]
        return x

    naive = _coverage(lambda rng: mean_interval(ar1(rng)), 0.0, 200)
    batched = _coverage(lambda rng: batch_means_interval(ar1(rng), batches=20), 0.0, 200)
    assert naive < 0.6 < 0.88 < batched, (naive, batched)


def _repeated_kfold_losses(rng, n=100, folds=5, repeats=4):
    """Repeated K-fold of the simplest model (predict the training mean), scored by squared
    error: its expected loss when trained on n (K-1)/K rows is exactly 1 + K / (n (K-1))."""
    x = rng.normal(size=n)
    losses = []
    for _ in range(repeats):
        order = rng.permutation(n)
        for test in np.array_split(order, folds):
            train = np.setdiff1d(order, test)
            losses.append(np.mean((x[test] - x[train].mean()) ** 2))
    return np.asarray(losses)


def test_corrected_resampled_t_covers_what_overlapping_folds_estimate_where_std_over_sqrt_j_does_not():
    truth = 1 + 1 / 80  # trained on 80 rows of 100
    rng = np.random.default_rng(7)
    corrected = naive = 0
    for _ in range(600):
        losses = _repeated_kfold_losses(rng)
        corrected += resampled_interval(losses, n_train=80, n_test=20).contains(truth)
        naive += mean_interval(losses).contains(truth)  # the folds taken as independent
    assert 0.92 < corrected / 600 < 0.99, corrected / 600
    assert naive / 600 < 0.8, naive / 600


def test_resampled_interval_checks_its_input():
    iv = resampled_interval([0.9, 0.92, 0.91], n_train=4, n_test=1)
    assert iv.method == "corrected resampled t" and iv.n == 3 and iv.contains(0.91)
    with pytest.raises(NotEnoughData):
        resampled_interval([0.9], n_train=4, n_test=1)
    with pytest.raises(ValueError, match=r"^resampled_interval\(n_train=0\)"):
        resampled_interval([0.9, 0.8], n_train=0, n_test=1)
    naive = np.std([0.9, 0.92, 0.91], ddof=1) / np.sqrt(3)
    assert resampled_se(naive * np.sqrt(3), 3, n_train=4, n_test=1) == pytest.approx(
        naive * np.sqrt(1 + 3 / 4))
    with pytest.raises(ValueError, match="finite"):
        resampled_interval([0.9, float("nan")], n_train=4, n_test=1)


# --- paired comparisons --------------------------------------------------------------------

def test_block_bootstrap_covers_a_quantile_of_a_correlated_series_where_order_statistics_do_not():
    """Latencies in a queue come in bursts: an order-statistic interval, which assumes them
    independent, covers the true p90 far less often than its level; moving blocks cover it."""
    from scipy import stats as st

    def series(rng, n=1500, phi=0.97):  # a Gaussian AR(1): stationary N(0, 1), strongly correlated
        e = rng.normal(0, np.sqrt(1 - phi**2), n)
        x = np.empty(n)
        x[0] = rng.normal()
        for i in range(1, n):
            x[i] = phi * x[i - 1] + e[i]
        return x

    truth = float(st.norm.ppf(0.9))
    iid = _coverage(lambda rng: quantile_interval(series(rng), 0.9), truth, 120)
    blocked = _coverage(lambda rng: block_bootstrap_interval(
        series(rng), lambda v: np.quantile(v, 0.9), n_resamples=500), truth, 120)
    assert iid < 0.6 < 0.75 < blocked, (iid, blocked)


def test_an_interval_relative_to_a_reference_keeps_its_level_and_coverage():
    iv = Interval(10.5, 9.8, 11.2, 0.95, "batch means", 1000)
    rel = iv.relative_to(10.0)
    assert (rel.estimate, rel.low, rel.high) == pytest.approx((0.05, -0.02, 0.12))
    assert rel.level == 0.95 and rel.method == "batch means" and rel.n == 1000
    assert rel.contains(0.0) == iv.contains(10.0)
    with pytest.raises(ValueError, match="reference"):
        iv.relative_to(0)


def test_paired_interval_over_seeds_covers_the_true_gain():
    def make(rng):
        seed_effect = rng.normal(0.9, 0.02, 5)  # what the seed does to both models
        return paired_interval(seed_effect + 0.01 + rng.normal(0, 0.005, 5), seed_effect)

    assert 0.93 < _coverage(make, 0.01, 2000) < 0.97


def test_paired_bootstrap_and_mcnemar_on_the_same_rows():
    rng = np.random.default_rng(5)
    hard = rng.random(2000) < 0.2
    a = ~hard | (rng.random(2000) < 0.5)
    b = ~hard | (rng.random(2000) < 0.2)
    gap = paired_bootstrap(a, b)
    assert gap.low > 0 and gap.contains(float(np.mean(a) - np.mean(b)))
    m = mcnemar(a, b)
    assert m.only_a > m.only_b and m.p_value < 0.01 and m.n == 2000


def test_mcnemar_rejects_no_more_often_than_its_level_when_models_are_equal():
    rng = np.random.default_rng(6)
    rejections = 0
    for _ in range(400):
        a = rng.random(300) < 0.9
        b = rng.random(300) < 0.9
        rejections += mcnemar(a, b).p_value < 0.05
    assert rejections / 400 <= 0.06


def test_paired_inputs_are_checked_at_the_door():
    with pytest.raises(ValueError, match="one value of each per row"):
        paired_bootstrap([True, False], [True])
    with pytest.raises(ValueError, match="per-row correctness"):
        mcnemar([0.3, 0.9], [1, 0])
    with pytest.raises(ValueError, match=r"ratio_interval\(paired=True\)"):
        ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive measurements"):
        ratio_interval([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="finite numbers"):
        mean_interval([1.0, float("nan"), 2.0])
    with pytest.raises(NotEnoughData):
        mean_interval([1.0])


# --- verdicts --------------------------------------------------------------------------------

def _iv(lo, hi):
    return Interval((lo + hi) / 2, lo, hi, 0.95, "test", 10)


@pytest.mark.parametrize(("lo", "hi", "status"), [
    (1.3, 1.5, HOLDS), (1.0, 1.1, REFUTED), (1.1, 1.3, INCONCLUSIVE), (0.9, 1.2, REFUTED)])
def test_verdict_follows_where_the_interval_lies(lo, hi, status):
    assert judge(_iv(lo, hi), "speedup above 1.2", above=1.2).status == status


def test_a_two_sided_claim_holds_only_inside_both_bounds():
    claim = dict(above=-0.2, below=0.2)
    assert judge(_iv(-0.1, 0.15), "error within 0.2", **claim).holds
    assert judge(_iv(0.25, 0.4), "error within 0.2", **claim).refuted
    assert judge(_iv(0.1, 0.3), "error within 0.2", **claim).inconclusive


class _Busy:
    trusted = False
    reasons = ("other processes took 1.00 CPUs",)


class _Quiet:
    trusted = True
    reasons = ()


def test_a_busy_machine_turns_a_refutation_into_inconclusive_with_its_reason():
    v = judge(_iv(1.0, 1.1), "speedup above 1.2", above=1.2, machine=_Busy())
    assert v.inconclusive and "other processes took 1.00 CPUs" in v.reason
    assert "does not hold" in v.reason  # the learner sees what the numbers alone would say
    assert judge(_iv(1.0, 1.1), "speedup above 1.2", above=1.2, machine=_Quiet()).refuted
    # a claim noise cannot fake still holds on a busy machine; one it can fake does not
    assert judge(_iv(1.3, 1.5), "x", above=1.2, machine=_Busy()).holds
    assert judge(_iv(1.3, 1.5), "x", above=1.2, machine=_Busy(), noise_favours_claim=True).inconclusive


def test_judge_takes_a_machine_check_or_its_report_and_refuses_anything_else(monkeypatch):
    import mlscale_lab.evidence._machine as machine

    monkeypatch.setattr(machine, "cpu_throttled_seconds", iter(range(0, 10**6, 5)).__next__)
    with MachineCheck() as mc:  # throttled 5 s per read: not to be trusted
        time.sleep(0.05)
    assert judge(_iv(1.0, 1.1), "x", above=1.2, machine=mc).inconclusive
    assert judge(_iv(1.0, 1.1), "x", above=1.2, machine=mc.report).inconclusive
    with pytest.raises(TypeError, match="MachineReport"):
        judge(_iv(1.0, 1.1), "x", above=1.2, machine=True)
    with pytest.raises(RuntimeError, match="after the `with` block"):
        judge(_iv(1.0, 1.1), "x", above=1.2, machine=MachineCheck())


def test_an_inconclusive_verdict_on_an_untrusted_machine_names_the_machine_too():
    v = judge(_iv(1.1, 1.3), "speedup above 1.2", above=1.2, machine=_Busy())
    assert v.inconclusive and "straddles 1.2" in v.reason and "other processes took 1.00 CPUs" in v.reason
    assert "cannot be trusted" not in judge(_iv(1.1, 1.3), "x", above=1.2, machine=_Quiet()).reason


def test_a_claim_that_needs_more_cpus_than_the_machine_has_is_inconclusive():
    class OneCPU(_Quiet):
        cpus = 1.0

    class TwoCPUs(_Quiet):
        cpus = 2.0

    for lo, hi in ((1.3, 1.5), (0.9, 1.0)):  # holds, or does not hold, on the numbers alone
        v = judge(_iv(lo, hi), "2 threads beat 1", above=1.2, machine=OneCPU(), needs_cpus=2)
        assert v.inconclusive and "1 CPU(s) only" in v.reason and "needs 2" in v.reason
    assert judge(_iv(1.3, 1.5), "x", above=1.2, machine=TwoCPUs(), needs_cpus=2).holds
    assert judge(_iv(0.9, 1.0), "x", above=1.2, machine=TwoCPUs(), needs_cpus=2).refuted
    # without a machine report, the CPUs this process may use decide
    assert judge(_iv(1.3, 1.5), "x", above=1.2, needs_cpus=10_000).inconclusive


def test_checkpoint_fails_only_on_a_refuted_claim(capsys):
    assert checkpoint(judge(_iv(1.3, 1.5), "fast", above=1.2)).holds
    assert checkpoint(judge(_iv(1.1, 1.3), "fast", above=1.2)).inconclusive
    assert "inconclusive: fast." in capsys.readouterr().out
    with pytest.raises(AssertionError, match="does not hold: fast"):
        checkpoint(judge(_iv(1.0, 1.1), "fast", above=1.2))


def test_verdicts_have_three_values_not_a_truth():
    v = judge(_iv(1.3, 1.5), "fast", above=1.2)
    with pytest.raises(TypeError, match="three values"):
        bool(v)
    rec = v.as_record()
    assert rec["status"] == "holds" and rec["low"] == 1.3 and rec["claim"] == "fast"


def test_judge_checks_its_arguments():
    with pytest.raises(ValueError, match="give the claim's bound"):
        judge(_iv(1, 2), "x")
    with pytest.raises(ValueError, match="above < below"):
        judge(_iv(1, 2), "x", above=2, below=1)
    with pytest.raises(TypeError, match="expected an Interval"):
        judge(1.5, "x", above=1)


# --- the machine check ---------------------------------------------------------------------

SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


def _spinners(n, seconds):
    return [subprocess.Popen([sys.executable, "-c", SPIN.format(s=seconds)]) for _ in range(n)]


def _cpu_seconds(procs):
    import psutil

    total = 0.0
    for p in procs:
        t = psutil.Process(p.pid).cpu_times()
        total += t.user + t.system
    return total


def test_the_same_spinning_processes_count_as_ours_or_as_others_by_whose_tree_they_are_in():
    # held to the spinners' own CPU clocks, so it holds however busy the machine is
    cpus = max(1, int(machine_cpus()))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    spinners = _spinners(cpus, 4.0)
    try:
        time.sleep(0.3)  # let them start
        with MachineCheck(pid=sleeper.pid) as theirs:
            before = _cpu_seconds(spinners)
            with MachineCheck() as ours:
                time.sleep(1.5)
            spun = _cpu_seconds(spinners) - before
    finally:
        for p in spinners:
            p.wait(10)
        sleeper.kill()
        sleeper.wait()
    mine, other = ours.report, theirs.report
    assert spun > 0.3  # they ran
    # our check counts the spinners (our children) as ours, give or take a sample interval
    assert abs(mine.ours_cores * mine.seconds - spun) < 0.15 * spun + 0.2 * cpus, (mine, spun)
    # the other check, rooted elsewhere, counts at least what they spun as other processes'
    assert other.others_cores * other.seconds > 0.8 * spun, (other, spun)
    # spinners on every CPU, outside its tree, leave nothing idle: not to be trusted
    assert not other.trusted and "other processes" in other.reasons[0]


def test_steal_and_throttling_are_reasons_and_flags_are_added(monkeypatch):
    import mlscale_lab.evidence._machine as machine

    counter = iter(range(0, 10**6, 1))

    def throttled():  # 1 s of throttling per read: far over the 5 % limit
        return float(next(counter))

    real = machine._system_times

    def stolen(ids):
        busy, idle, steal, total = real(ids)
        return busy, idle, steal + time.perf_counter() * 10, total + time.perf_counter() * 10

    monkeypatch.setattr(machine, "cpu_throttled_seconds", throttled)
    monkeypatch.setattr(machine, "_system_times", stolen)
    with MachineCheck() as mc:
        time.sleep(0.3)
    reasons = " | ".join(mc.report.reasons)
    assert "CPU quota" in reasons and "steal" in reasons and not mc.report.trusted
    mc.flag("the load generator sent late")
    assert mc.report.reasons[-1] == "the load generator sent late"
    with pytest.raises(ValueError, match="a sentence"):
        mc.flag("")


def test_report_is_only_read_after_the_block():
    mc = MachineCheck()
    with pytest.raises(RuntimeError, match="after the `with` block"):
        _ = mc.report
    with mc:
        pass
    assert mc.report.seconds >= 0 and "machine" in str(mc.report)
    assert mc.report.as_record()["cpus"] == mc.report.cpus


# --- interleaved timings -------------------------------------------------------------------

def test_interleaved_timings_give_the_ratio_and_drop_the_warm_up():
    calls = {"a": 0}

    def slow_first():
        calls["a"] += 1
        time.sleep(0.25 if calls["a"] == 1 else 0.02)

    # Sleeps of 20 and 10 ms: a busy machine's timer lateness (a millisecond or two) barely
    # moves their ratio, where it would halve that of 2 against 1 ms.
    t = interleave({"a": slow_first, "b": lambda: time.sleep(0.01)}, rounds=15, warmup=1)
    assert t.rounds == 15 and len(t.samples["a"]) == len(t.samples["b"]) == 15
    assert max(t.samples["a"]) < 0.2  # the 250 ms warm-up call was dropped
    ratio = t.ratio("a", "b")
    assert 1.4 < ratio.estimate < 2.3, ratio
    assert t.median("b") > 0.0099 and t.interval("b").low > 0.0099
    with pytest.raises(KeyError, match="the arms are"):
        t.median("c")


def test_interleave_rotates_the_order_of_arms():
    order = []
    interleave({"x": lambda: order.append("x"), "y": lambda: order.append("y")},
               rounds=4, warmup=0)
    assert order == ["x", "y", "y", "x", "x", "y", "y", "x"]


def test_interleave_can_count_cpu_seconds_instead_of_wall_time():
    def sleeps():
        time.sleep(0.02)

    def works():
        sum(range(300_000))  # a few milliseconds of CPU

    arms = {"sleeps": sleeps, "works": works}
    wall = interleave(arms, rounds=4)
    cpu = interleave(arms, rounds=4, clock=time.process_time)
    assert wall.median("sleeps") > 0.018 > wall.median("works") / 10
    assert cpu.median("sleeps") < 0.005 and cpu.median("works") > 5 * cpu.median("sleeps")
    with pytest.raises(TypeError, match="clock"):
        interleave(arms, clock="process_time")


def test_interleave_checks_its_arms():
    with pytest.raises(ValueError, match="a dict of name"):
        interleave({})
    with pytest.raises(TypeError, match="not callable"):
        interleave({"a": 3})
