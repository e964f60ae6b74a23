"""SlicedJob: a job run a slice per step, finished at once when a new one starts or on demand."""
from __future__ import annotations

from collections.abc import Iterator

from fastpolicy_invdyn_ros.ros.sliced_job import SlicedJob


def job(name: str, slices: int, log: list[str]) -> Iterator[None]:
    for i in range(slices):
        log.append(f"{name}{i}")
        if i < slices - 1:
            yield


def test_each_step_runs_one_slice_until_the_job_is_done() -> None:
    log: list[str] = []
    sliced = SlicedJob()
    sliced.step()  # nothing pending: nothing runs
    sliced.start(job("a", 3, log))
    assert log == [] and sliced.pending, "starting runs nothing yet"
    sliced.step()
    assert log == ["a0"]
    sliced.step()
    sliced.step()
    assert log == ["a0", "a1", "a2"] and not sliced.pending
    sliced.step()
    assert log == ["a0", "a1", "a2"]


def test_a_new_job_first_finishes_the_one_before_and_finish_runs_the_rest_at_once() -> None:
    log: list[str] = []
    sliced = SlicedJob()
    sliced.start(job("a", 3, log))
    sliced.step()
    sliced.start(job("b", 2, log))
    assert log == ["a0", "a1", "a2"], "the unfinished job ran to its end before the new one"
    sliced.finish()
    assert log == ["a0", "a1", "a2", "b0", "b1"] and not sliced.pending


def test_a_dropped_job_runs_no_further() -> None:
    log: list[str] = []
    sliced = SlicedJob()
    sliced.start(job("a", 3, log))
    sliced.step()
    sliced.drop()
    sliced.step()
    sliced.finish()
    assert log == ["a0"] and not sliced.pending
