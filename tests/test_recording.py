import json

import numpy as np
import pytest

import mlscale_lab
from mlscale_lab.recording import RECORD_ENV, read_records


def test_record_returns_plain_value_and_remembers_it():
    assert mlscale_lab.record("ratio", np.float64(1.5)) == 1.5
    assert type(mlscale_lab.recorded()["ratio"]) is float
    assert mlscale_lab.record("flag", np.bool_(True)) is True


def test_record_appends_to_the_runner_file(tmp_path, monkeypatch):
    target = tmp_path / "records.jsonl"
    monkeypatch.setenv(RECORD_ENV, str(target))
    mlscale_lab.record("a", 1)
    mlscale_lab.record("b", [1, 2])
    mlscale_lab.record("a", 3)
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert [x["name"] for x in lines] == ["a", "b", "a"]
    assert read_records(target) == {"a": 3, "b": [1, 2]}


@pytest.mark.parametrize(
    "name,value,err",
    [("bad name", 1, ValueError), ("x", float("nan"), ValueError), ("x", object(), TypeError)],
)
def test_record_refuses_what_a_report_cannot_hold(name, value, err):
    with pytest.raises(err, match="record"):
        mlscale_lab.record(name, value)
