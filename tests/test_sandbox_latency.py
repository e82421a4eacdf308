"""The sandbox for many stores (SPEC §16): `sandbox serve --latency-ms N` makes every mall answer
wait N ms in its own thread, so answers to many stores overlap as they would over a network; and
each refresh token ``<sandbox refresh token>-NAME`` is a seller of its own (its feeds, its rate
limits), as each of an agency's Amazon stores is."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from crossship.errors import UsageError
from crossship.sandbox import SandboxOptions, SandboxServer

WAIT = 10  # seconds an event may take before the test fails (never reached when it passes)


def token_form(options: SandboxOptions) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": options.refresh_token,
        "client_id": options.client_id,
        "client_secret": options.client_secret,
    }


class HeldSleep:
    """The server's sleep: records each delay; the first one waits until released."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if len(self.delays) == 1:
            self.holding.set()
            assert self.release.wait(WAIT)


@pytest.fixture
def held() -> Iterator[tuple[SandboxServer, HeldSleep]]:
    sleep = HeldSleep()
    server = SandboxServer(options=SandboxOptions(latency_ms=250), sleep=sleep).start()
    yield server, sleep
    sleep.release.set()
    server.stop()


def test_an_answer_waiting_its_latency_holds_up_no_other(
    held: tuple[SandboxServer, HeldSleep],
) -> None:
    server, sleep = held
    first: list[requests.Response] = []
    waiting = threading.Thread(
        target=lambda: first.append(
            requests.post(server.token_url, data=token_form(server.options), timeout=WAIT)
        )
    )
    waiting.start()
    assert sleep.holding.wait(WAIT)  # the first answer is held in its latency

    second = requests.post(server.token_url, data=token_form(server.options), timeout=WAIT)

    assert second.status_code == 200 and not first  # answered while the first still waits
    sleep.release.set()
    waiting.join(WAIT)
    assert first[0].status_code == 200
    assert sleep.delays == [0.25, 0.25]


def test_the_control_endpoints_answer_at_once(held: tuple[SandboxServer, HeldSleep]) -> None:
    server, sleep = held
    assert requests.get(server.url + "/_sandbox/calls", timeout=WAIT).json() == {}
    assert sleep.delays == []


def test_latency_can_change_at_run_time_and_never_be_negative() -> None:
    delays: list[float] = []
    with SandboxServer(sleep=delays.append) as server:
        requests.post(server.token_url, data={}, timeout=WAIT)
        assert delays == []  # none by default
        answer = requests.post(server.url + "/_sandbox/options", json={"latency_ms": 40}, timeout=5)
        assert answer.status_code == 200
        requests.post(server.token_url, data={}, timeout=WAIT)
        assert delays == [0.04]
        bad = requests.post(server.url + "/_sandbox/options", json={"latency_ms": -1}, timeout=5)
        assert bad.status_code == 400
    with pytest.raises(UsageError):
        SandboxOptions(latency_ms=-1)


def test_serve_refuses_a_negative_latency(run) -> None:
    result = run(["sandbox", "serve", "--port", "0", "--latency-ms", "-1"])
    assert result.exit_code == 2
    assert "--latency-ms" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------- sellers


def login(server: SandboxServer, refresh_token: str) -> requests.Session:
    http = requests.Session()
    form = token_form(server.options) | {"refresh_token": refresh_token}
    answer = http.post(server.token_url, data=form, timeout=WAIT)
    assert answer.status_code == 200, answer.text
    http.headers["x-amz-access-token"] = answer.json()["access_token"]
    return http


def create_feed(server: SandboxServer, http: requests.Session) -> str:
    feeds = server.url + "/feeds/2021-06-30"
    content_type = "text/tab-separated-values; charset=UTF-8"
    document = http.post(feeds + "/documents", json={"contentType": content_type}, timeout=WAIT)
    upload = http.put(
        document.json()["url"], data=b"x\n", headers={"Content-Type": content_type}, timeout=WAIT
    )
    assert upload.status_code == 200, upload.text
    spec = {
        "feedType": "POST_FLAT_FILE_FULFILLMENT_DATA",
        "marketplaceIds": ["A1VC38T7YXB528"],
        "inputFeedDocumentId": document.json()["feedDocumentId"],
    }
    answer = http.post(feeds + "/feeds", json=spec, timeout=WAIT)
    assert answer.status_code == 202, answer.text
    return answer.json()["feedId"]


def listed(server: SandboxServer, http: requests.Session) -> list[str]:
    answer = http.get(
        server.url + "/feeds/2021-06-30/feeds",
        params={"feedTypes": "POST_FLAT_FILE_FULFILLMENT_DATA"},
        timeout=WAIT,
    )
    assert answer.status_code == 200, answer.text
    return [f["feedId"] for f in answer.json()["feeds"]]


def test_each_refresh_token_suffix_is_its_own_seller() -> None:
    with SandboxServer() as server:
        base = server.options.refresh_token
        one, two = login(server, base + "-shop-1"), login(server, base + "-shop-2")
        default = login(server, base)
        feed_one, feed_two = create_feed(server, one), create_feed(server, two)

        assert listed(server, one) == [feed_one]
        assert listed(server, two) == [feed_two]
        assert listed(server, default) == []
        feeds = server.url + "/feeds/2021-06-30/feeds/"
        assert one.get(feeds + feed_one, timeout=WAIT).status_code == 200
        assert one.get(feeds + feed_two, timeout=WAIT).status_code == 404  # not its feed
        assert len(server.feeds()) == 2  # the control API sees every seller's


@pytest.mark.parametrize("suffix", ["-", "-a b", "-" + "x" * 65, "x", "-ok\n"])
def test_other_refresh_tokens_are_refused(suffix: str) -> None:
    with SandboxServer() as server:
        form = token_form(server.options)
        form["refresh_token"] += suffix
        answer = requests.post(server.token_url, data=form, timeout=WAIT)
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_grant"


def test_rate_limits_are_per_seller() -> None:
    with SandboxServer() as server:  # createFeedDocument: a burst of 15, then 0.5 a second
        base = server.options.refresh_token
        one, two = login(server, base + "-one"), login(server, base + "-two")
        url = server.url + "/feeds/2021-06-30/documents"
        body = {"contentType": "text/tab-separated-values; charset=UTF-8"}
        first = [one.post(url, json=body, timeout=WAIT).status_code for _ in range(16)]
        assert first.count(201) == 15 and first[-1] == 429
        assert two.post(url, json=body, timeout=WAIT).status_code == 201  # its own burst
