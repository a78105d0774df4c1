"""The private foundation's cgroup reader: limits and throttling counters, v1 and v2."""

from pathlib import Path

import pytest

from mlscale_lab._core.cgroups import (
    available_cpus,
    cgroup_cpu_quota,
    cgroup_memory_limit,
    cgroup_memory_peak,
    cgroup_oom_kills,
    cgroup_path,
    cpu_throttled_seconds,
)

GiB = 1024**3


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_throttling_is_read_from_cgroup_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "pod").mkdir(parents=True)
    (v2 / "pod" / "cpu.stat").write_text("usage_usec 900\nnr_periods 10\nthrottled_usec 1500000\n")
    assert cpu_throttled_seconds(cgroup_root=v2, proc_cgroup="0::/pod\n") == 1.5
    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "x").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "docker" / "x" / "cpu.stat").write_text(
        "nr_periods 5\nnr_throttled 2\nthrottled_time 250000000\n")
    assert cpu_throttled_seconds(cgroup_root=v1, proc_cgroup="4:cpu,cpuacct:/docker/x\n") == 0.25
    assert cpu_throttled_seconds(cgroup_root=tmp_path / "none", proc_cgroup="0::/\n") is None
    assert cpu_throttled_seconds(proc_cgroup="") is None  # off Linux


def test_available_cpus_takes_the_tightest_limit(tmp_path):
    (tmp_path / "pod").mkdir()
    (tmp_path / "pod" / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(env={}, cgroup_root=tmp_path, proc_cgroup="0::/pod\n") == (0.5, "cgroup v2 cpu.max")
    assert available_cpus(env={"CPU_LIMIT": "0.25"}, cgroup_root=tmp_path,
                          proc_cgroup="0::/pod\n") == (0.25, "CPU_LIMIT")
    cpus, source = available_cpus(env={"CPU_LIMIT": "0"}, cgroup_root=tmp_path / "x", proc_cgroup="")
    assert cpus >= 1 and source.startswith("host")


def test_cgroup_path_is_the_one_reader_of_proc_self_cgroup():
    v1 = "12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc/mem\n0::/ignored\n"
    assert cgroup_path("memory", proc_cgroup=v1) == "/docker/abc/mem"
    assert cgroup_path("cpu", proc_cgroup=v1) == "/docker/abc"
    assert cgroup_path(None, proc_cgroup=v1) == "/ignored"
    assert cgroup_path(proc_cgroup="0::\n") == "/"
    assert cgroup_path("memory", proc_cgroup="garbage") == "/"
    assert cgroup_path().startswith("/")  # this machine's own file, or "/" without one
    with pytest.raises(ValueError, match=r"cgroup_path\(controller='memroy'\)"):
        cgroup_path("memroy")


def test_cpu_quota_is_the_tightest_from_the_cgroup_up_to_the_root(tmp_path):
    v2 = tmp_path / "v2"
    _write(v2, "kubepods/cpu.max", "150000 100000\n")
    _write(v2, "kubepods/pod/cpu.max", "max 100000\n")  # no limit of its own: the parent's holds
    assert cgroup_cpu_quota(v2, "0::/kubepods/pod\n") == (1.5, "cgroup v2 cpu.max")
    _write(v2, "kubepods/pod/cpu.max", "50000 100000\n")
    assert cgroup_cpu_quota(v2, "0::/kubepods/pod\n") == (0.5, "cgroup v2 cpu.max")
    v1 = tmp_path / "v1"
    _write(v1, "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "200000\n")
    _write(v1, "cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(v1, "4:cpu,cpuacct:/docker/x\n") == (2.0, "cgroup v1 cpu.cfs_quota_us")
    _write(v1, "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "-1\n")  # v1's "no limit"
    assert cgroup_cpu_quota(v1, "4:cpu,cpuacct:/docker/x\n") is None
    assert cgroup_cpu_quota(tmp_path / "none", "0::/\n") is None
    assert cgroup_cpu_quota(v2, "") is None  # no /proc/self/cgroup (macOS, Windows): root only


def test_memory_limit_and_usage_from_cgroup_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    _write(v2, "user.slice/memory.max", f"{3 * GiB}\n")
    _write(v2, "user.slice/pod/memory.max", f"{2 * GiB}\n")
    _write(v2, "user.slice/pod/memory.current", f"{GiB}\n")
    assert cgroup_memory_limit(v2, "0::/user.slice/pod\n") == (2 * GiB, "cgroup v2 memory.max", GiB)
    v1 = tmp_path / "v1"
    _write(v1, "memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n")  # unlimited
    assert cgroup_memory_limit(v1, "3:memory:/docker/abc\n") is None
    _write(v1, "memory/docker/abc/memory.limit_in_bytes", f"{GiB}\n")
    assert cgroup_memory_limit(v1, "3:memory:/docker/abc\n") == (GiB, "cgroup v1 memory.limit_in_bytes", None)


def test_throttling_of_a_nested_cgroup_and_an_unreadable_counter(tmp_path):
    # The innermost cgroup with a counter answers; a garbled file is no number.
    _write(tmp_path, "cpu.stat", "throttled_usec 9000000\n")
    _write(tmp_path, "a/b/cpu.stat", "usage_usec 1\nthrottled_usec 2000000\n")
    assert cpu_throttled_seconds(cgroup_root=tmp_path, proc_cgroup="0::/a/b\n") == 2.0
    _write(tmp_path, "a/b/cpu.stat", "throttled_usec lots\n")
    assert cpu_throttled_seconds(cgroup_root=tmp_path, proc_cgroup="0::/a/b\n") == 9.0


def test_peak_memory_and_oom_kills_of_a_cgroup_v1_and_v2(tmp_path):
    v2 = tmp_path / "v2"
    _write(v2, "memory.peak", f"{GiB}\n")
    _write(v2, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert (cgroup_memory_peak(v2), cgroup_oom_kills(v2)) == (GiB, 2)
    v1 = tmp_path / "v1"
    _write(v1, "memory.max_usage_in_bytes", "4096\n")
    _write(v1, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert (cgroup_memory_peak(v1), cgroup_oom_kills(v1)) == (4096, 1)
    assert (cgroup_memory_peak(tmp_path / "none"), cgroup_oom_kills(tmp_path / "none")) == (None, None)
