"""A versioned model store on disk: artifacts keyed by content hash, promote, rollback, history.

Every registered model is serialised with joblib and stored under the SHA-256 of those bytes,
so the same model registered twice is one version and a version id says exactly which bytes
served. ``promote`` makes a version the production model; ``rollback`` returns to the one that
served before; ``history`` is the append-only log of which version served from when.

>>> import tempfile
>>> from sklearn.dummy import DummyClassifier
>>> tmp = tempfile.TemporaryDirectory()  # removed with the object
>>> reg = ModelRegistry(tmp.name)
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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HASH_CHARS = 12  # a prefix of the SHA-256 is plenty to tell a lab's versions apart


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it: all or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def artifact_bytes(model) -> bytes:
    """The bytes ``joblib.dump`` writes for ``model`` (what the registry hashes and stores).

    Parameters
    ----------
    model : object

    Returns
    -------
    bytes

    Examples
    --------
    >>> artifact_bytes([1, 2]) == artifact_bytes([1, 2])
    True
    """
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def content_hash(data: bytes) -> str:
    """Version id of an artifact: the first 12 hex digits of its SHA-256.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    str

    Examples
    --------
    >>> content_hash(b"model")
    '9372c470eead'
    """
    return hashlib.sha256(data).hexdigest()[:_HASH_CHARS]


#: Keys the registry writes itself; metadata may not override them (``versions()`` sorts by
#: ``registered_at`` and ``load`` finds files by ``version``).
RESERVED_METADATA = ("version", "registered_at", "bytes", "model")


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
            raise NotADirectoryError(
                f"ModelRegistry(root={str(self.root)!r}): expected a folder (or a path to create "
                f"one), got a file"
            )
        (self.root / "artifacts").mkdir(parents=True, exist_ok=True)
        self._clock = clock

    # -- versions ---------------------------------------------------------------------------
    def path(self, version: str) -> Path:
        """Path of a stored artifact.

        Parameters
        ----------
        version : str

        Returns
        -------
        pathlib.Path

        Raises
        ------
        KeyError
            For a version that is not in the registry.
        """
        p = self.root / "artifacts" / f"{version}.joblib"
        meta = p.with_suffix(".json")
        if not isinstance(version, str) or not p.exists() or not meta.exists():
            known = ", ".join(self.versions()) or "none yet"
            raise KeyError(
                f"ModelRegistry(version={version!r}): expected a version in the registry "
                f"(known: {known}), got one that is not in the registry"
            )
        return p

    def register(self, model, **metadata: Any) -> str:
        """Store ``model`` and return its version id (its content hash).

        Registering is all or nothing: the metadata and the artifact are serialised in memory
        first, written to temporary files, and renamed into place, the metadata last (a version
        exists once its metadata does). Metadata that is not JSON or a model that cannot be
        pickled raises before anything is written. Registering identical bytes again returns
        the same id and keeps the first metadata.

        Parameters
        ----------
        model : object
            Anything joblib can pickle.
        **metadata
            Kept with the version (accuracy, data window...); must be JSON-serialisable.

        Returns
        -------
        str
            The version id.

        Examples
        --------
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> reg = ModelRegistry(tmp.name)
        >>> reg.register({"weights": [1, 2]}, note=object())
        Traceback (most recent call last):
        ...
        TypeError: ModelRegistry.register(note=<object ...>): expected JSON-serialisable metadata (numbers, strings, lists, dicts), got <object ...>
        >>> reg.versions()
        []
        """
        reserved = sorted(set(metadata) & set(RESERVED_METADATA))
        if reserved:
            raise ValueError(
                f"ModelRegistry.register({reserved[0]}=...): expected metadata other than the "
                f"registry's own keys {', '.join(RESERVED_METADATA)}, got {reserved[0]!r}; "
                "rename it (e.g. trained_at)")
        for key, value in metadata.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"ModelRegistry.register({key}={value!r}): expected JSON-serialisable "
                    f"metadata (numbers, strings, lists, dicts), got {value!r}"
                ) from None
        try:
            data = artifact_bytes(model)
        except Exception as exc:
            raise TypeError(
                f"ModelRegistry.register(model={type(model).__name__}(...)): expected a model "
                f"joblib can pickle, got one that fails with {type(exc).__name__}: {exc} "
                f"(closures and lambdas inside a model cannot be pickled; use module-level "
                f"functions)"
            ) from exc
        version = content_hash(data)
        folder = self.root / "artifacts"
        meta_path = folder / f"{version}.json"
        if meta_path.exists():
            return version
        meta = json.dumps(
            {
                "version": version,
                "registered_at": self._clock(),
                "bytes": len(data),
                "model": type(model).__name__,
                **metadata,
            },
            indent=1,
        )
        _write_atomically(folder / f"{version}.joblib", data)
        _write_atomically(meta_path, meta.encode("utf-8"))
        return version

    def versions(self) -> list[str]:
        """All stored version ids, oldest first.

        Returns
        -------
        list of str
        """
        metas = [
            json.loads(p.read_text())
            for p in (self.root / "artifacts").glob("*.json")
            if p.with_suffix(".joblib").exists()
        ]
        return [m["version"] for m in sorted(metas, key=lambda m: m["registered_at"])]

    def metadata(self, version: str) -> dict:
        """What was recorded when ``version`` was registered.

        Parameters
        ----------
        version : str

        Returns
        -------
        dict
            ``version``, ``registered_at``, ``bytes``, ``model`` and the keywords given to
            :meth:`register`.
        """
        meta = self.root / "artifacts" / f"{version}.json"
        if not isinstance(version, str) or not meta.exists():
            self.path(version)  # raises the helpful KeyError
        return json.loads(meta.read_text())

    def load(self, version: str | None = None):
        """Load a version (default: the production one).

        Parameters
        ----------
        version : str, optional

        Returns
        -------
        object
            The unpickled model.
        """
        import joblib

        if version is None:
            version = self.production
            if version is None:
                raise LookupError(
                    "ModelRegistry.load(): nothing is in production yet: promote a version first"
                )
        return joblib.load(self.path(version))

    # -- serving ----------------------------------------------------------------------------
    def _log(self, event: str, version: str, **extra) -> dict:
        entry = {"time": self._clock(), "event": event, "version": version, **extra}
        line = json.dumps(entry) + "\n"  # serialised before the log is touched
        with (self.root / "history.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line)
        return entry

    def history(self) -> list[dict]:
        """Every promote and rollback, oldest first.

        Returns
        -------
        list of dict
            ``{"time", "event", "version", ...}`` (extra keys from :meth:`promote`).
        """
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
        """Make ``version`` the production model.

        Parameters
        ----------
        version : str
        **reason
            Extra keys for the log line (JSON-serialisable).

        Returns
        -------
        str
            ``version``.
        """
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
        """Serve again the version promoted before the current one.

        Rolling back twice after promoting v1, v2, v3 serves v1.

        Returns
        -------
        str
            The version serving now.

        Raises
        ------
        LookupError
            When fewer than two versions have been promoted.
        """
        stack = self._stack()
        if len(stack) < 2:
            raise LookupError(
                "ModelRegistry.rollback(): nothing to roll back to: fewer than two versions "
                "have been promoted"
            )
        self._log("rollback", stack[-2], replaced=stack[-1])
        return stack[-2]

    def served_at(self, when: float) -> str | None:
        """The version in production at time ``when`` (None if nothing served yet).

        Parameters
        ----------
        when : float
            A time from the registry's clock.

        Returns
        -------
        str or None
        """
        version = None
        for e in self.history():
            if e["time"] > when:
                break
            version = e["version"]
        return version

    def timeline(self) -> list[dict]:
        """Serving intervals, oldest first.

        Returns
        -------
        list of dict
            ``{"version", "start", "end"}``, ``end`` None for the version serving now.
        """
        hist = self.history()
        return [
            {"version": e["version"], "start": e["time"], "end": nxt["time"] if nxt else None}
            for e, nxt in zip(hist, [*hist[1:], None], strict=True)
        ]
