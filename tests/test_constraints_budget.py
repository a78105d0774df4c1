"""machine_budget(): container limits are read from cgroup files and Binder's variables."""

from pathlib import Path

import psutil
import pytest

from mlscale_lab.constraints import is_small_machine, machine_budget

GiB = 1024**3


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_no_cgroup_files_falls_back_to_host_and_says_so(tmp_path):
    b = machine_budget(env={}, cgroup_root=tmp_path / "none", proc_cgroup="")
    assert b.limit_source.startswith("host")
    assert b.cpu_source.startswith("host")
    assert b.memory_limit_bytes == b.host_memory_bytes
    assert b.cpus == b.host_cpus
    assert 0 < b.memory_available_bytes <= b.memory_limit_bytes


def test_mem_limit_from_binder_variable(tmp_path):
    b = machine_budget(env={"MEM_LIMIT": str(GiB)}, cgroup_root=tmp_path, proc_cgroup="")
    assert b.memory_limit_bytes == GiB
    assert b.limit_source == "MEM_LIMIT"
    assert b.memory_available_bytes <= GiB


def test_cgroup_v2_memory_max_and_cpu_max(tmp_path):
    _write(tmp_path, "user.slice/pod/memory.max", str(2 * GiB))
    _write(tmp_path, "user.slice/pod/memory.current", str(GiB // 2))
    _write(tmp_path, "user.slice/pod/cpu.max", "50000 100000")
    b = machine_budget(env={}, cgroup_root=tmp_path, proc_cgroup="0::/user.slice/pod\n")
    assert b.memory_limit_bytes == 2 * GiB
    assert b.limit_source == "cgroup v2 memory.max"
    assert b.memory_available_bytes <= 2 * GiB - GiB // 2
    assert b.cpus == 0.5 and b.cpu_source == "cgroup v2 cpu.max"
    assert b.usable_cpus == 1


def test_cgroup_v2_parent_limit_applies_to_child(tmp_path):
    _write(tmp_path, "kubepods/memory.max", str(3 * GiB))
    _write(tmp_path, "kubepods/pod1/memory.max", "max")
    b = machine_budget(env={}, cgroup_root=tmp_path, proc_cgroup="0::/kubepods/pod1\n")
    assert b.memory_limit_bytes == 3 * GiB


def test_cgroup_v1_memory_limit(tmp_path):
    _write(tmp_path, "memory/docker/abc/memory.limit_in_bytes", str(GiB))
    _write(tmp_path, "memory/docker/abc/memory.usage_in_bytes", str(100 * 1024**2))
    _write(tmp_path, "cpu/docker/abc/cpu.cfs_quota_us", "100000")
    _write(tmp_path, "cpu/docker/abc/cpu.cfs_period_us", "100000")
    proc = "4:memory:/docker/abc\n1:cpu:/docker/abc\n0::/\n"
    b = machine_budget(env={}, cgroup_root=tmp_path, proc_cgroup=proc)
    assert b.memory_limit_bytes == GiB
    assert b.limit_source == "cgroup v1 memory.limit_in_bytes"
    assert b.cpus == 1.0 and b.cpu_source == "cgroup v1 cpu.cfs_quota_us"


def test_cgroup_v1_unlimited_is_ignored(tmp_path):
    _write(tmp_path, "memory/memory.limit_in_bytes", "9223372036854771712")
    b = machine_budget(env={}, cgroup_root=tmp_path, proc_cgroup="4:memory:/\n")
    assert b.limit_source.startswith("host")


def test_tightest_limit_wins(tmp_path):
    _write(tmp_path, "memory.max", str(4 * GiB))
    b = machine_budget(env={"MEM_LIMIT": str(2 * GiB), "CPU_LIMIT": "1.0"}, cgroup_root=tmp_path,
                       proc_cgroup="0::/\n")
    assert (b.memory_limit_bytes, b.limit_source) == (2 * GiB, "MEM_LIMIT")
    assert (b.cpus, b.cpu_source) == (1.0, "CPU_LIMIT")
    b = machine_budget(env={"MEM_LIMIT": str(8 * GiB)}, cgroup_root=tmp_path, proc_cgroup="0::/\n")
    assert b.memory_limit_bytes in (4 * GiB, b.host_memory_bytes)  # cgroup, unless the host is smaller


def test_zero_limit_means_unlimited(tmp_path):
    b = machine_budget(env={"MEM_LIMIT": "0", "CPU_LIMIT": "0"}, cgroup_root=tmp_path, proc_cgroup="")
    assert b.limit_source.startswith("host")


def test_garbage_limit_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"MEM_LIMIT='2G' is not a number"):
        machine_budget(env={"MEM_LIMIT": "2G"}, cgroup_root=tmp_path, proc_cgroup="")


def test_small_machine_switch(tmp_path):
    binder = machine_budget(env={"MEM_LIMIT": str(2 * GiB), "CPU_LIMIT": "1"}, cgroup_root=tmp_path,
                            proc_cgroup="")
    assert is_small_machine(binder)
    assert binder.as_dict()["memory_limit_bytes"] == 2 * GiB



def test_cgroup_v1_cpu_quota_found_through_the_cpu_line(tmp_path):
    _write(tmp_path, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000")
    _write(tmp_path, "cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000")
    b = machine_budget(env={}, cgroup_root=tmp_path, proc_cgroup="3:cpu,cpuacct:/docker/abc\n")
    assert b.cpu_source == "cgroup v1 cpu.cfs_quota_us"
    assert b.cpus == min(1.5, b.host_cpus)


def test_budget_without_cpu_affinity_or_cgroups(monkeypatch, tmp_path):
    # macOS and Windows: no /proc/self/cgroup, and psutil has no cpu_affinity on macOS.
    monkeypatch.delattr(psutil.Process, "cpu_affinity", raising=False)
    monkeypatch.delattr("os.sched_getaffinity", raising=False)
    b = machine_budget(env={}, cgroup_root=tmp_path / "none", proc_cgroup=None)
    assert b.host_cpus == psutil.cpu_count(logical=True)
    assert b.memory_limit_bytes > 0


def test_is_small_machine_checks_its_argument(tmp_path):
    with pytest.raises(TypeError, match=r"is_small_machine\(memory_bytes='4G'\)"):
        is_small_machine(machine_budget(env={}, cgroup_root=tmp_path, proc_cgroup=""),
                         memory_bytes="4G")
