import json

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from mlscale_lab.deployment import ModelRegistry, artifact_bytes, content_hash


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        self.t += 10.0
        return self.t


def _model(label):
    return DummyClassifier(strategy="constant", constant=label).fit(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.fixture
def reg(tmp_path):
    return ModelRegistry(tmp_path / "reg", clock=FakeClock())


def test_version_is_the_content_hash_and_dedupes(reg):
    m = _model(0)
    v = reg.register(m, accuracy=0.9)
    assert v == content_hash(artifact_bytes(m))
    assert reg.register(_model(0)) == v  # same bytes, same version
    assert reg.register(_model(1)) != v
    assert reg.metadata(v)["accuracy"] == 0.9
    assert reg.path(v).read_bytes() == artifact_bytes(m)


def test_load_returns_a_working_model(reg):
    v = reg.promote(reg.register(_model(1)))
    assert reg.load(v).predict(np.zeros((3, 2))).tolist() == [1, 1, 1]
    assert reg.load().predict(np.zeros((1, 2))).tolist() == [1]  # production by default


def test_promote_rollback_and_who_served_when(reg):
    v1 = reg.register(_model(0))
    v2 = reg.register(DummyClassifier(strategy="most_frequent").fit(np.zeros((2, 2)), [1, 1]))
    v3 = reg.register(_model(1))
    assert reg.production is None
    reg.promote(v1)
    reg.promote(v2)
    reg.promote(v3)
    assert reg.production == v3
    assert reg.rollback() == v2
    assert reg.rollback() == v1
    with pytest.raises(LookupError, match="roll back"):
        reg.rollback()
    hist = reg.history()
    assert [e["event"] for e in hist] == ["promote"] * 3 + ["rollback"] * 2
    assert hist[3]["replaced"] == v3
    # FakeClock: register x3 -> 1010..1030, promote at 1040, 1050, 1060, rollbacks 1070, 1080.
    assert reg.served_at(1000) is None
    assert reg.served_at(1045) == v1
    assert reg.served_at(1065) == v3
    assert reg.served_at(1075) == v2
    tl = reg.timeline()
    assert [e["version"] for e in tl] == [v1, v2, v3, v2, v1]
    assert tl[0]["end"] == tl[1]["start"] and tl[-1]["end"] is None


def test_registry_survives_reopening(tmp_path):
    a = ModelRegistry(tmp_path / "r")
    v = a.promote(a.register(_model(0)))
    b = ModelRegistry(tmp_path / "r")
    assert b.production == v and b.versions() == [v]
    assert (
        json.loads((tmp_path / "r" / "history.jsonl").read_text().splitlines()[0])["version"] == v
    )


def test_unknown_versions_and_empty_registry_say_so(reg):
    with pytest.raises(KeyError, match="not in the registry"):
        reg.promote("deadbeef0000")
    with pytest.raises(LookupError, match="promote"):
        reg.load()


def test_root_must_be_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="root"):
        ModelRegistry(f)


def _files(reg):
    return sorted(p.name for p in (reg.root / "artifacts").iterdir())


def test_metadata_that_is_not_json_writes_nothing(reg):
    v = reg.register(_model(0), accuracy=0.9)
    before = _files(reg)
    with pytest.raises(TypeError, match=r"register\(trained_at=.*JSON"):
        reg.register(_model(1), trained_at=object())
    assert _files(reg) == before  # no artifact, no metadata, no temporary file
    assert reg.versions() == [v]  # and the registry keeps working
    v2 = reg.register(_model(1), trained_at="2026-12-01")
    assert reg.versions() == [v, v2]


def test_a_model_that_cannot_be_pickled_writes_nothing(reg):
    class Local:  # defined in a function: pickle cannot find it again
        pass

    with pytest.raises(TypeError, match="cannot be pickled|can pickle"):
        reg.register(Local())
    assert _files(reg) == [] and reg.versions() == []


def test_a_failed_write_leaves_no_half_version(reg, monkeypatch):
    import os

    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if str(dst).endswith(".json"):  # the artifact is in place, the metadata fails
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        reg.register(_model(0), accuracy=0.5)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not any(n.endswith(".part") for n in _files(reg))
    assert reg.versions() == []  # an artifact without metadata is not a version
    with pytest.raises(KeyError):
        reg.path(content_hash(artifact_bytes(_model(0))))
    v = reg.register(_model(0), accuracy=0.5)  # registering again completes it
    assert reg.versions() == [v] and reg.metadata(v)["accuracy"] == 0.5


@pytest.mark.parametrize("key", ["registered_at", "version", "bytes"])
def test_metadata_cannot_override_the_registrys_own_keys(reg, key):
    with pytest.raises(ValueError, match=rf"register\({key}=\.\.\.\): expected metadata other than"):
        reg.register(_model(0), **{key: "2024-01-01"})
    assert reg.versions() == []  # nothing written, and the registry still lists
