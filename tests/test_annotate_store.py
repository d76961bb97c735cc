"""The JSONL result store: appends, resume state, torn-line repair, canonical rewrite, lock."""

from __future__ import annotations

import json

import pytest

from perception_verl.annotate.store import ResultStore, StoreError, read_rows


def _ok(row_id, facts=("AB = 6",)):
    return {"id": row_id, "annotations": list(facts), "status": "ok"}


def _failed(row_id):
    return {"id": row_id, "status": "failed", "stage": "filter", "reason": "none of 2 solutions verified"}


def test_rows_are_on_disk_right_after_append(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResultStore(path, fsync_every=100) as store:
        store.append(_ok(1))
        assert [json.loads(line) for line in path.read_text().splitlines()] == [_ok(1)]
        store.append(_failed("b"))
        assert len(path.read_text().splitlines()) == 2


def test_resume_skips_done_rows_and_retries_failed_only_when_asked(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResultStore(path) as store:
        store.append(_ok(1))
        store.append(_failed(2))
    with ResultStore(path) as store:
        assert store.done_keys() == {"1", "2"}
        assert store.done_keys(retry_failed=True) == {"1"}


def test_torn_last_line_is_cut_off_and_appending_continues(tmp_path):
    path = tmp_path / "out.jsonl"
    good = json.dumps(_ok(1)) + "\n"
    path.write_text(good + '{"id": 2, "annotations": ["AB')
    with ResultStore(path) as store:
        assert store.done_keys() == {"1"}
        assert path.read_text() == good
        store.append(_ok(2))
    assert [row["id"] for row in read_rows(path)] == [1, 2]


def test_a_bad_line_before_the_end_is_an_error_naming_it(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(_ok(1)) + "\nnot json\n" + json.dumps(_ok(2)) + "\n")
    with pytest.raises(StoreError, match=r"out\.jsonl:2: not valid JSON"):
        ResultStore(path).open()
    path.write_text(json.dumps({"id": 1, "status": "maybe"}) + "\n")
    with pytest.raises(StoreError, match=r"out\.jsonl:1: not a result row"):
        read_rows(path)


def test_finalize_keeps_the_last_row_per_id_in_input_order_then_unknown_ids(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResultStore(path) as store:
        store.append(_ok(3))
        store.append(_failed(1))
        store.append(_ok("stale"))
        store.append(_ok(1, ["BC = 4"]))
        store.finalize([1, 2, 3])
        assert [(row["id"], row["status"]) for row in read_rows(path)] == [
            (1, "ok"),
            (3, "ok"),
            ("stale", "ok"),
        ]
        assert read_rows(path)[0]["annotations"] == ["BC = 4"]
        store.append(_ok(2))
    assert [row["id"] for row in read_rows(path)] == [1, 3, "stale", 2]
    assert not (tmp_path / "out.jsonl.sorting").exists()


def test_two_runs_cannot_share_an_output(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResultStore(path), pytest.raises(StoreError, match="in use by another run"):
        ResultStore(path).open()
    with ResultStore(path) as store:
        assert store.done_keys() == set()
