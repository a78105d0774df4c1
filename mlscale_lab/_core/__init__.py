"""The private foundation: plumbing every layer may import, written once.

Nothing here teaches; it is what the teaching code stands on. Each module is one idea with
public names (the package as a whole is private: notebooks import the sections, not this):

- :mod:`~mlscale_lab._core.processes`: a process tree, finding it and ending all of it, and how
  long a process waited for a CPU;
- :mod:`~mlscale_lab._core.memory`: what a process tree holds in memory (a fork's shared pages
  counted once);
- :mod:`~mlscale_lab._core.cgroups`: what the container enforces (cgroup v1 and v2 files);
- :mod:`~mlscale_lab._core.lifeline`: a child process (a model server, a training worker)
  that ends when its parent is gone;
- :mod:`~mlscale_lab._core.environment`: the environment variables the package sets and reads,
  each named once;
- :mod:`~mlscale_lab._core.tempdirs`: temporary folders with one owner, removed however it ends;
- :mod:`~mlscale_lab._core.sockets`: folders short enough for a kernel's Unix sockets;
- :mod:`~mlscale_lab._core.imports`: optional libraries our own processes skip, being slow to
  import.
"""
