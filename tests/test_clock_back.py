"""A last run recorded in the future (the clock moved back) makes the job due, said once
(issue 10 item 8): one run with a wrong clock must not block every later run silently."""

from __future__ import annotations

from datetime import timedelta

import notify_helpers
import pytest
from notify_helpers import T0, Env

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock


@pytest.mark.parametrize("job", [["notify", "run"], ["results", "fetch"]])
def test_a_run_recorded_in_the_future_does_not_block_later_runs(env: Env, job) -> None:
    env.clock.now = T0 + timedelta(days=400)  # a run with the clock a year ahead
    assert env.cli(*job).exit_code == 0
    env.clock.now = T0  # the clock is put right

    first = env.cli(*job)

    assert first.exit_code == 0, first.stderr
    assert "skipped" not in first.stderr
    assert first.stderr.count("the clock moved back") == 1
    kind = job[0] if job[0] == "results" else "notify"
    assert len(env.runs(kind)) == 2

    env.clock.advance(minutes=5)
    second = env.cli(*job)  # back to the ordinary guard: said once, not at every run
    assert "not due until" in second.stderr
    assert "clock moved back" not in second.stderr

    env.clock.advance(minutes=15)
    third = env.cli(*job)
    assert "skipped" not in third.stderr and "clock moved back" not in third.stderr
    assert len(env.runs(kind)) == 3
