"""A run's Amazon calls do not grow with its orders (SPEC §11): one token per run, three calls
per feed to send it, three per feed to read its result, whether 10 orders or 3,000, with 10% of
them refused by Amazon, and when the orders fill several feeds.

End to end over HTTP: the orders go in through `orders import`, the runs through the CLI, and
the calls are counted by the sandbox.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossship.amazon.mall import AmazonSession
from crossship.sandbox import SandboxOptions, SandboxServer

STORE = "amazon-main"
HEADER = ["管理番号", "店舗", "注文番号", "処理フェーズ", "発送日", "配送便", "配送番号",
          "注文商品番号", "数量"]  # fmt: skip


def order_id(n: int) -> str:
    return f"503-{n:07d}-{n * 7 % 10_000_000:07d}"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer("127.0.0.1", 0, SandboxOptions(enforce_rate_limits=False)) as server:
        yield server


@pytest.fixture
def configured(run, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    options = sandbox.options
    for name, value in (
        ("LWA_CLIENT_ID", options.client_id),
        ("LWA_CLIENT_SECRET", options.client_secret),
        ("REFRESH_TOKEN", options.refresh_token),
    ):
        monkeypatch.setenv(f"CROSSSHIP_AMAZON_MAIN_{name}", value)
    for args in (
        ["init"],
        ["config", "phase", "create", "出荷済み"],
        ["config", "phase", "create", "完了", "--ship-date", "optional"],
        ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"],
        ["config", "store", "add", STORE, "--mall", "amazon", "--endpoint", sandbox.url,
         "--token-url", sandbox.token_url],
        ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
        ["auto", "start", STORE],
    ):  # fmt: skip
        result = run(args, catch=False)
        assert result.exit_code == 0, (args, result.stderr)
    return sandbox


def import_orders(run, path: Path, count: int) -> None:
    """``count`` orders with two item lines each, in the target phase."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(1, count + 1):
            for line in (1, 2):
                writer.writerow(
                    [f"{n:06d}", STORE, order_id(n), "出荷済み", "2026-11-27", "ヤマト運輸",
                     f"4012{n:08d}", f"{n:012d}{line:02d}", "1"]
                )  # fmt: skip
    result = run(["orders", "import", str(path)], catch=False)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("count", "feed_bytes"), [(10, None), (3000, None), (3000, 40_000)])
def test_calls_per_run_do_not_grow_with_the_orders(
    run, configured: SandboxServer, tmp_path: Path, monkeypatch, count: int, feed_bytes: int | None
) -> None:
    sandbox = configured
    if feed_bytes:  # as above Amazon's 10 MiB, in small: the orders fill several feeds
        monkeypatch.setattr(
            AmazonSession, "render", lambda self, lines: self.renderer.split(lines, feed_bytes)
        )
    import_orders(run, tmp_path / "orders.csv", count)
    unknown = {order_id(n) for n in range(10, count + 1, 10)}  # one order in ten
    sandbox.set_options(known_order_ids={order_id(n) for n in range(1, count + 1)} - unknown)

    before = Counter(sandbox.calls)
    result = run(["-q", "notify", "run", "--force"], catch=False)
    assert result.exit_code == 0, result.stderr
    sent = Counter(sandbox.calls) - before
    feeds = sent["createFeed"]
    assert feeds == (1 if feed_bytes is None else len(sandbox.feeds())) and feeds >= 1
    assert feed_bytes is None or feeds > 1
    assert sent == {"token": 1, "createFeedDocument": feeds, "upload": feeds, "createFeed": feeds}

    before = Counter(sandbox.calls)
    result = run(["-q", "results", "fetch", "--force"], catch=False)
    # -q: the orders Amazon refused need the operator, in one line that says how to list them
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.endswith("crossship orders list --store amazon-main --api-status error")
    fetched = Counter(sandbox.calls) - before
    assert fetched == {"token": 1, "getFeed": feeds, "getFeedDocument": feeds, "download": feeds}

    listed = run(["orders", "list", "--store", STORE, "--format", "csv"], catch=False)
    statuses = Counter(row["status"] for row in csv.DictReader(listed.stdout.splitlines()))
    assert statuses == {"success": count - len(unknown), "error": len(unknown)}
