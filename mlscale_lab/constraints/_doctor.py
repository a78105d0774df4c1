"""``mlscale-lab doctor``: the machine as the labs see it, and whether their budgets fit."""

from __future__ import annotations

import platform

from mlscale_lab.constraints._budget import MachineBudget, machine_budget

__all__ = ["KEY_PACKAGES", "LABS_DISK_BYTES", "LABS_MEMORY_BYTES", "doctor_report", "format_doctor",
           "package_versions", "verdict"]

#: The largest peak memory any lab is allowed (lab 05, Dask workers included), plus headroom
#: for the JupyterLab server: below this the labs may be killed.
LABS_MEMORY_BYTES = int(1.5 * 1024**3)
#: Disk the labs write at most (saved models, artifact stores, executed notebooks).
LABS_DISK_BYTES = 500 * 1024**2

KEY_PACKAGES = (
    "numpy", "scikit-learn", "torch", "dask", "distributed", "psutil", "matplotlib",
    "jupyterlab", "ipywidgets", "nbgrader", "nbclient",
)


def package_versions(names=KEY_PACKAGES) -> dict[str, str | None]:
    """Installed versions, read from metadata (nothing is imported); None when missing.

    Parameters
    ----------
    names : iterable of str, default KEY_PACKAGES
        Distribution names as pip knows them.

    Returns
    -------
    dict
        ``{name: version or None}``.

    Examples
    --------
    >>> package_versions(["psutil", "no-such-package-here"])["no-such-package-here"] is None
    True
    """
    from importlib import metadata  # here: reading metadata is the only use, `import` stays light

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def verdict(budget: MachineBudget) -> tuple[list[str], list[str]]:
    """What stops the labs' budgets fitting this machine (problems), and what only slows them.

    Parameters
    ----------
    budget : MachineBudget

    Returns
    -------
    (list of str, list of str)
        Problems (the labs may be killed) and warnings (they run, slowly), in plain words.

    Examples
    --------
    >>> tiny = MachineBudget(0.5, 2**30, 2**29, 2**40, "MEM_LIMIT", "CPU_LIMIT", 4, 2**34)
    >>> problems, warnings = verdict(tiny)
    >>> len(problems), len(warnings)
    (1, 1)
    """
    problems, warnings = [], []
    if budget.memory_available_bytes < LABS_MEMORY_BYTES:
        problems.append(
            f"only {budget.memory_available_bytes / 1024**3:.2f} GiB of memory is available "
            f"({budget.limit_source}); the largest lab peaks near {LABS_MEMORY_BYTES / 1024**3:.1f} GiB. "
            "Close other notebooks (Kernel > Shut Down All Kernels) or use a bigger machine."
        )
    if budget.disk_free_bytes < LABS_DISK_BYTES:
        problems.append(
            f"only {budget.disk_free_bytes / 1024**2:.0f} MB of disk is free; the labs write up to "
            f"{LABS_DISK_BYTES / 1024**2:.0f} MB. Free some space."
        )
    if budget.cpus < 1:
        warnings.append(
            f"{budget.cpus} CPUs ({budget.cpu_source}): the labs run, but timings will be slow and "
            "parallel speedups will not show."
        )
    return problems, warnings


def doctor_report(path: str = ".") -> dict:
    """Everything ``mlscale-lab doctor`` prints, as a JSON-ready dict.

    Parameters
    ----------
    path : str, default "."
        Where free disk is measured.

    Returns
    -------
    dict
        The :class:`MachineBudget` fields, ``fits``, ``problems``, ``warnings``, ``python``,
        ``platform`` and ``versions``.

    Examples
    --------
    >>> report = doctor_report()
    >>> isinstance(report["fits"], bool) and "torch" in report["versions"]
    True
    """
    budget = machine_budget(path)
    problems, warnings = verdict(budget)
    return {
        **budget.as_dict(),
        "fits": not problems,
        "problems": problems,
        "warnings": warnings,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": package_versions(),
    }


def format_doctor(report: dict) -> str:
    """The report of :func:`doctor_report` as the lines ``mlscale-lab doctor`` prints.

    Examples
    --------
    >>> print(format_doctor(doctor_report()).splitlines()[0])  # doctest: +ELLIPSIS
    CPUs ...
    """
    gib = 1024**3
    lines = [
        f"CPUs            {report['cpus']:g} usable ({report['cpu_source']}; host has {report['host_cpus']})",
        f"memory limit    {report['memory_limit_bytes'] / gib:.2f} GiB ({report['limit_source']}; "
        f"host has {report['host_memory_bytes'] / gib:.1f} GiB)",
        f"memory free     {report['memory_available_bytes'] / gib:.2f} GiB",
        f"disk free       {report['disk_free_bytes'] / gib:.1f} GiB",
        f"python          {report['python']} on {report['platform']}",
        "packages        "
        + ", ".join(f"{k} {v or 'MISSING'}" for k, v in report["versions"].items()),
    ]
    if report["fits"]:
        lines.append("verdict         the labs fit this machine")
    else:
        lines.append("verdict         the labs do NOT fit this machine:")
    lines += [f"  - {p}" for p in report["problems"]]
    lines += [f"note: {w}" for w in report["warnings"]]
    return "\n".join(lines)
