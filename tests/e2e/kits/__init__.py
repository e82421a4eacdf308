"""The contract-test hook: one kit per mall, so every registered mall runs the same cycle suite.

``tests/e2e/test_contract.py`` runs once per mall in ``crossship.malls.registry()``; for mall
``KEY`` it imports ``tests.e2e.kits.KEY`` and uses its ``KIT``. A registered mall without a kit
fails the suite (a mall is not done until it passes the contract). A kit says how to configure
one store of its mall against the test's in-process sandbox (``SandboxServer``, which serves every
mall on one port), which orders to import, the calls a run makes, and how to hold or lose them:

    key: str                        the mall's registry key
    store: str                      the store name the kit configures
    notify_calls: tuple[str, ...]   every call a first notify run makes (kill -9 at each)
    results_calls: tuple[str, ...]  every call the results fetch after it makes
    submit_call: str                the call that may take effect (its lost answer is reconciled)
    commands(sandbox) -> list[list[str]]
        crossship arguments after the common setup (init, phases 出荷済み and 完了, mail):
        carriers with this mall's codes, `config store add` pointing at the sandbox, the target
        phase `出荷済み --move-to 完了`, `auto start`
    environment(sandbox) -> dict[str, str]   the store's credentials (CROSSSHIP_<STORE>_...)
    orders(count) -> list[dict[str, str]]    CSV rows of `count` shippable orders (columns of
                                             tests/e2e/conftest.CSV_COLUMNS), phase 出荷済み
    hold(sandbox, call)             the next `call` waits at the sandbox until release()
    release(sandbox)                held calls go on (the mall acts on them)
    lose_answer(sandbox, call)      the next `call` takes effect but its answer is lost
    calls(sandbox) -> Counter[str]  calls the sandbox received, by the names above
    registered(sandbox) -> Counter[str]
        mall_order_id → how many times the mall registered that order's shipment (a resend
        that only sets the same values again, as Yahoo's, counts once)
"""

from __future__ import annotations

import importlib
from collections import Counter
from typing import Any, Protocol


class MallKit(Protocol):
    key: str
    store: str
    notify_calls: tuple[str, ...]
    results_calls: tuple[str, ...]
    submit_call: str

    def commands(self, sandbox: Any) -> list[list[str]]: ...
    def environment(self, sandbox: Any) -> dict[str, str]: ...
    def orders(self, count: int) -> list[dict[str, str]]: ...
    def hold(self, sandbox: Any, call: str) -> None: ...
    def release(self, sandbox: Any) -> None: ...
    def lose_answer(self, sandbox: Any, call: str) -> None: ...
    def calls(self, sandbox: Any) -> Counter[str]: ...
    def registered(self, sandbox: Any) -> Counter[str]: ...


def kit_for(key: str) -> MallKit | None:
    try:
        module = importlib.import_module(f"tests.e2e.kits.{key}")
    except ModuleNotFoundError as exc:
        if exc.name == f"tests.e2e.kits.{key}":
            return None
        raise
    return module.KIT
