"""Deleting old history (SPEC §15): `history prune --before DATE` and the `--keep-days N` setting
that `results fetch` applies.

What goes: history rows older than the cutoff; finished batches (done, 通知失敗, 通知結果取得失敗,
released) created before it, with their row maps and the feed and report bytes they keep; run
records older than it, but the newest of each store and job (the 15-minute guard and `crossship
check` read it). What stays: every order, every batch still open or waiting for its result.

Bounded memory and time: rows go in chunks, each chunk one short transaction (so a run can write
between two chunks), found by id or by an index, never by loading a table. A budget stops a prune
after so many rows; `results fetch` uses one so that a first prune of a large history spreads over
several cycles. The file only shrinks with VACUUM, which is asked for (`--vacuum`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crossship.errors import UsageError
from crossship.i18n import _
from crossship.store import BATCH_OPEN_STATES, Store
from crossship.timeutil import local_iso, to_db

PREFIX = "history"  # settings key prefix: history.keep_days
HISTORY_CHUNK = 5000
BATCH_CHUNK = 200  # under SQLite's variable limit, and a few MB of feeds per transaction
RUN_CHUNK = 2000
FETCH_BUDGET = 200_000  # rows a results fetch deletes at most; the rest goes next cycle
WAITING = (*BATCH_OPEN_STATES, "submitted")


@dataclass
class Pruned:
    before: str  # the cutoff, UTC database text
    history: int = 0
    batches: int = 0
    runs: int = 0
    complete: bool = True  # False: the budget ran out, older rows remain
    size_before: int | None = None  # bytes, when vacuumed
    size_after: int | None = None

    @property
    def deleted(self) -> int:
        return self.history + self.batches + self.runs

    def summary(self) -> str:
        said = (
            _(
                "deleted {history} history rows, {batches} finished batches and "
                "{runs} run records from before {before}"
            )
            if self.complete
            else _(
                "deleted {history} history rows, {batches} finished batches and "
                "{runs} run records from before {before} (more remain: the next run goes on)"
            )
        )
        return said.format(
            history=self.history,
            batches=self.batches,
            runs=self.runs,
            before=local_iso(self.before),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": local_iso(self.before),
            "history": self.history,
            "batches": self.batches,
            "runs": self.runs,
            "complete": self.complete,
            "size_before": self.size_before,
            "size_after": self.size_after,
        }


def prune(
    store: Store,
    before: datetime,
    *,
    budget: int | None = None,
    vacuum: bool = False,
) -> Pruned:
    """Delete what is older than ``before``; at most ``budget`` rows of each kind (None: all)."""
    result = Pruned(before=to_db(before))
    result.history = _history(store, result.before, budget)
    result.batches = _batches(store, result.before, budget)
    result.runs = _runs(store, result.before, budget)
    if budget is not None and budget in (result.history, result.batches, result.runs):
        result.complete = False
    if vacuum:
        result.size_before = store.size()
        store.vacuum()
        result.size_after = store.size()
    return result


def _history(store: Store, before: str, budget: int | None) -> int:
    done = 0
    while budget is None or done < budget:
        chunk = HISTORY_CHUNK if budget is None else min(HISTORY_CHUNK, budget - done)
        deleted = store.prune_history(before, chunk)
        done += deleted
        if deleted < chunk:
            break
    return done


def _batches(store: Store, before: str, budget: int | None) -> int:
    # ids grow with time: walk from the oldest and stop at the first batch young enough to keep;
    # open and waiting batches on the way are stepped over, never deleted
    done, after = 0, 0
    while budget is None or done < budget:
        rows = store.oldest_batches(after, BATCH_CHUNK)
        old = [r for r in rows if r["created_at"] < before]
        finished = [r["id"] for r in old if r["state"] not in WAITING]
        if budget is not None:
            finished = finished[: budget - done]
        done += store.delete_finished_batches(finished)
        if len(old) < len(rows) or len(rows) < BATCH_CHUNK:
            break
        after = rows[-1]["id"]
    return done


def _runs(store: Store, before: str, budget: int | None) -> int:
    done, after = 0, 0
    newest: dict[tuple[str, str], int | None] = {}
    while budget is None or done < budget:
        rows = store.oldest_runs(after, RUN_CHUNK)
        old = [r for r in rows if r["started_at"] < before]
        doomed = []
        for r in old:
            key = (r["store"], r["job"])
            if key not in newest:  # the newest run of a store and job always stays
                latest = store.latest_run(*key)
                newest[key] = latest["id"] if latest else None
            if r["id"] != newest[key]:
                doomed.append(r["id"])
        if budget is not None:
            doomed = doomed[: budget - done]
        done += store.delete_runs(doomed)
        if len(old) < len(rows) or len(rows) < RUN_CHUNK:
            break
        after = rows[-1]["id"]
    return done


def parse_before(text: str, now: datetime) -> datetime:
    """``--before``: a date (local midnight), an ISO time, or an age (90d); never the future."""
    from crossship.timeutil import parse_moment

    moment = parse_moment(text, now=now, option="--before")
    if moment > now:
        raise UsageError(
            _(
                "--before {text!r} is in the future: it would delete the whole history; give a "
                "past date, or an age like 90d"
            ).format(text=text)
        )
    return moment


# ----------------------------------------------------------------------------- keep-days


def keep_days(store: Store) -> int | None:
    """The store-wide retention in days, or None (keep everything, the default)."""
    days = store.get_settings(PREFIX).get("keep_days")
    return days if isinstance(days, int) and days > 0 else None


def set_keep_days(store: Store, days: int) -> None:
    """0 keeps everything; N deletes, at each `results fetch`, what is older than N days."""
    if days < 0:
        raise UsageError(
            _("--keep-days {days}: give a number of days, or 0 to keep everything").format(
                days=days
            )
        )
    store.set_settings(PREFIX, {"keep_days": days or None})


def apply_keep_days(store: Store, now: datetime) -> Pruned | None:
    """What `results fetch` does after its batches: prune to the setting, within a budget."""
    days = keep_days(store)
    if days is None:
        return None
    return prune(store, now - timedelta(days=days), budget=FETCH_BUDGET)
