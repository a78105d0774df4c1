"""A versioned model store on disk: artifacts keyed by content hash, promote, rollback, history.

Every registered model is serialised with joblib and stored under the SHA-256 of those bytes,
so the same model registered twice is one version and a version id says exactly which bytes
served. ``promote`` makes a version the production model; ``rollback`` returns to the one that
served before; ``history`` is the append-only log of which version served from when.

>>> import tempfile
>>> from sklearn.dummy import DummyClassifier
>>> reg = ModelRegistry(tempfile.mkdtemp())
>>> v1 = reg.register(DummyClassifier(strategy="constant", constant=0).fit([[0]], [0]))
>>> v2 = reg.register(DummyClassifier(strategy="constant", constant=1).fit([[0]], [1]))
>>> _ = reg.promote(v1); _ = reg.promote(v2); reg.production == v2
True
>>> reg.rollback() == v1, [e["event"] for e in reg.history()]
(True, ['promote', 'promote', 'rollback'])
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HASH_CHARS = 12  # a prefix of the SHA-256 is plenty to tell a lab's versions apart


def artifact_bytes(model) -> bytes:
    """The bytes ``joblib.dump`` writes for ``model`` (what the registry hashes and stores)."""
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def content_hash(data: bytes) -> str:
    """Version id of an artifact: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:_HASH_CHARS]


class ModelRegistry:
    """Store model versions under ``root`` and keep track of the one in production.

    Layout: ``root/artifacts/<version>.joblib``, ``root/artifacts/<version>.json`` (metadata),
    ``root/history.jsonl`` (one line per promote or rollback).

    Parameters
    ----------
    root : path-like
        Folder of the store; created if missing. Reopening it gives the same registry.
    clock : callable, default time.time
        Source of timestamps (tests pass a fake clock).
    """

    def __init__(self, root: str | os.PathLike, *, clock: Callable[[], float] = time.time):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"root={str(self.root)!r} exists and is not a folder")
        (self.root / "artifacts").mkdir(parents=True, exist_ok=True)
        self._clock = clock

    # -- versions ---------------------------------------------------------------------------
    def path(self, version: str) -> Path:
        """Path of a stored artifact (raises ``KeyError`` for an unknown version)."""
        p = self.root / "artifacts" / f"{version}.joblib"
        if not isinstance(version, str) or not p.exists():
            known = ", ".join(self.versions()) or "none yet"
            raise KeyError(f"version={version!r} is not in the registry (known: {known})")
        return p

    def register(self, model, **metadata: Any) -> str:
        """Store ``model`` and return its version id (its content hash).

        Keyword arguments are kept as the version's metadata (accuracy, data window...); they
        must be JSON-serialisable. Registering identical bytes again returns the same id.
        """
        data = artifact_bytes(model)
        version = content_hash(data)
        art = self.root / "artifacts" / f"{version}.joblib"
        if not art.exists():
            tmp = art.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, art)  # never leave half an artifact behind
            meta = {
                "version": version,
                "registered_at": self._clock(),
                "bytes": len(data),
                "model": type(model).__name__,
                **metadata,
            }
            (self.root / "artifacts" / f"{version}.json").write_text(json.dumps(meta, indent=1))
        return version

    def versions(self) -> list[str]:
        """All stored version ids, oldest first."""
        metas = [self.metadata(p.stem) for p in (self.root / "artifacts").glob("*.joblib")]
        return [m["version"] for m in sorted(metas, key=lambda m: m["registered_at"])]

    def metadata(self, version: str) -> dict:
        meta = self.root / "artifacts" / f"{version}.json"
        if not meta.exists():
            self.path(version)  # raises the helpful KeyError
        return json.loads(meta.read_text())

    def load(self, version: str | None = None):
        """Load a version (default: the production one)."""
        import joblib

        if version is None:
            version = self.production
            if version is None:
                raise LookupError("nothing is in production yet: promote a version first")
        return joblib.load(self.path(version))

    # -- serving ----------------------------------------------------------------------------
    def _log(self, event: str, version: str, **extra) -> dict:
        entry = {"time": self._clock(), "event": event, "version": version, **extra}
        with (self.root / "history.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        return entry

    def history(self) -> list[dict]:
        """Every promote and rollback, oldest first: ``{"time", "event", "version", ...}``."""
        log = self.root / "history.jsonl"
        if not log.exists():
            return []
        return [
            json.loads(line)
            for line in log.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]

    @property
    def production(self) -> str | None:
        """The version serving now (None before the first promote)."""
        hist = self.history()
        return hist[-1]["version"] if hist else None

    def promote(self, version: str, **reason: Any) -> str:
        """Make ``version`` the production model; returns it. Extra keywords go to the log."""
        self.path(version)  # must exist
        self._log("promote", version, **reason)
        return version

    def _stack(self) -> list[str]:
        """Versions a rollback can return to, the serving one last (replayed from the log)."""
        stack: list[str] = []
        for e in self.history():
            if e["event"] == "promote" and (not stack or stack[-1] != e["version"]):
                stack.append(e["version"])
            elif e["event"] == "rollback":
                stack.pop()
        return stack

    def rollback(self) -> str:
        """Serve again the version promoted before the current one; returns it.

        Rolling back twice after promoting v1, v2, v3 serves v1.
        """
        stack = self._stack()
        if len(stack) < 2:
            raise LookupError("nothing to roll back to: fewer than two versions have been promoted")
        self._log("rollback", stack[-2], replaced=stack[-1])
        return stack[-2]

    def served_at(self, when: float) -> str | None:
        """The version in production at time ``when`` (None if nothing served yet)."""
        version = None
        for e in self.history():
            if e["time"] > when:
                break
            version = e["version"]
        return version

    def timeline(self) -> list[dict]:
        """Serving intervals: ``{"version", "start", "end"}``, ``end`` None for the current one."""
        hist = self.history()
        return [
            {"version": e["version"], "start": e["time"], "end": nxt["time"] if nxt else None}
            for e, nxt in zip(hist, [*hist[1:], None], strict=True)
        ]
