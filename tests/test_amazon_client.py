"""crossship.amazon.client against mocked SP-API answers, checked against Amazon's own model.

Every request goes through ``responses`` with an ordered registry: a request that was not expected,
or one expected that never came, fails the test. Response bodies are the model's sandbox examples
(``x-amzn-api-sandbox``) wherever the model has one. A few tests use real sockets on 127.0.0.1 to
check how real network failures are classified.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from crossship.amazon.client import (
    DEFAULT_ENDPOINT,
    DEFAULT_TOKEN_URL,
    FEED_TYPE,
    JP_MARKETPLACE,
    AmazonClient,
    Credentials,
    check_url,
)
from crossship.errors import AmazonError, ConfigError

SAMPLES = Path(__file__).parent / "fixtures" / "amazon"
MODEL_PATH = SAMPLES / "feeds_2021-06-30.json"
MODEL = json.loads(MODEL_PATH.read_text())

# Copies of the model's sandbox examples and of the reference samples, so the behaviour tests also
# run where the reference directory is absent; test_fixtures_are_the_models_own checks them.
SANDBOX = {
    ("createFeedDocument", "201"): {
        "feedDocumentId": "3d4e42b5-1d6e-44e8-a89c-2abfca0625bb",
        "url": "https://d34o8swod1owfl.cloudfront.net/Feed_101__POST_PRODUCT_DATA_.xml",
    },
    ("createFeed", "202"): {"feedId": "3485934"},
    ("createFeed", "400"): {
        "errors": [{"code": "400", "message": "Invalid input", "details": "Invalid input"}]
    },
    ("getFeed", "200"): {
        "feedId": "FeedId1",
        "feedType": "POST_PRODUCT_DATA",
        "createdTime": "2024-03-11T13:16:24.630Z",
        "processingStatus": "CANCELLED",
        "processingStartTime": "2024-03-11T13:16:24.630Z",
        "processingEndTime": "2024-03-11T13:16:24.630Z",
    },
    ("getFeeds", "200"): {
        "feeds": [
            {
                "feedId": "FeedId1",
                "feedType": "POST_PRODUCT_DATA",
                "createdTime": "2024-03-11T13:16:24.630Z",
                "processingStatus": "CANCELLED",
                "processingStartTime": "2024-03-11T13:16:24.630Z",
                "processingEndTime": "2024-03-11T13:16:24.630Z",
            }
        ],
        "nextToken": "VGhpcyB0b2tlbiBpcyBvcGFxdWUgYW5kIGludGVudGlvbmFsbHkgb2JmdXNjYXRlZA==",
    },
    ("getFeedDocument", "200"): {
        "feedDocumentId": "0356cf79-b8b0-4226-b4b9-0ee058ea5760",
        "url": "https://d34o8swod1owfl.cloudfront.net/Feed_101__POST_PRODUCT_DATA_.xml",
    },
}
SANDBOX_REQUESTS = {
    "createFeedDocument": {"contentType": "text/tab-separated-values; charset=UTF-8"},
    "createFeed": {
        "feedType": "POST_PRODUCT_DATA",
        "marketplaceIds": ["ATVPDKIKX0DER", "A1F83G8C2ARO7P"],
        "inputFeedDocumentId": "3d4e42b5-1d6e-44e8-a89c-2abfca0625bb",
    },
}
ERROR_400_CREATE_FEED = {
    "errors": [
        {
            "code": "InvalidInput",
            "message": "One or more required parameters missing",
            "details": "marketplaceIds;feedType;inputFeedDocumentId;",
        }
    ]
}
ERROR_429 = {
    "errors": [
        {
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }
    ]
}
# lwa-token-exchange.http
ACCESS_TOKEN = "Atza|IQEBLjAsAhRmHjNgHpi0U-Dme37rR6CuUpSREXAMPLE"
TOKEN_ANSWER = {
    "access_token": ACCESS_TOKEN,
    "token_type": "bearer",
    "expires_in": 3600,
    "refresh_token": "Atzr|IQEBLzAtAhRPpMJxdwVz2Nn6f2y-tpJX2DeXEXAMPLE",
}

CREDENTIALS = Credentials(
    client_id="amzn1.application-oa2-client.CLIENTIDsentinel",
    client_secret="CLIENTSECRETsentinel-Y76SDl2F",
    refresh_token="Atzr|REFRESHTOKENsentinel",
)
SECRETS = (*CREDENTIALS.secrets(), ACCESS_TOKEN)
CONTENT_TYPE = "text/tab-separated-values; charset=Shift_JIS"
PRESIGNED = "https://tortuga-prod-fe.s3.amazonaws.com/doc?X-Amz-Signature=SIGNATUREsentinel&X-Amz-Expires=300"
FEEDS_URL = f"{DEFAULT_ENDPOINT}/feeds/2021-06-30/feeds"
DOCUMENTS_URL = f"{DEFAULT_ENDPOINT}/feeds/2021-06-30/documents"
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n" + "<!-- padding -->\r\n" * 40 + "</body></html>"
)


# ---- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> AmazonClient:
    return AmazonClient(credentials=CREDENTIALS, sleep=sleeps.append, rand=lambda: 0.5)


def add_token(rsps: responses.RequestsMock, token: str = ACCESS_TOKEN) -> None:
    rsps.add(responses.POST, DEFAULT_TOKEN_URL, json={**TOKEN_ANSWER, "access_token": token})


def model_operation(operation_id: str) -> dict:
    assert MODEL is not None
    for methods in MODEL["paths"].values():
        for operation in methods.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return operation
    raise KeyError(operation_id)


def model_sandbox(operation_id: str, status: str) -> dict:
    static = model_operation(operation_id)["responses"][status]["x-amzn-api-sandbox"]["static"]
    return static[0]


def model_body_schema(operation_id: str) -> dict:
    (body,) = [p for p in model_operation(operation_id)["parameters"] if p["in"] == "body"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    return MODEL["definitions"][name]


def assert_body_matches_model(operation_id: str, body: dict) -> None:
    schema = model_body_schema(operation_id)
    assert set(body) == set(schema["required"]), "exactly the model's required properties"
    assert set(body) <= set(schema["properties"]), "only property names the model knows"
    for name, value in body.items():
        expected = {"string": str, "array": list}[schema["properties"][name]["type"]]
        assert isinstance(value, expected), name


def sent(rsps: responses.RequestsMock, index: int) -> requests.PreparedRequest:
    return rsps.calls[index].request


def outcome_of(call) -> AmazonError:
    with pytest.raises(AmazonError) as caught:
        call()
    return caught.value


# ---- the model and the fixtures ----------------------------------------------------------------


def test_fixtures_are_the_models_own() -> None:
    for (operation_id, status), body in SANDBOX.items():
        assert model_sandbox(operation_id, status)["response"] == body, (operation_id, status)
    for operation_id, body in SANDBOX_REQUESTS.items():
        example = model_sandbox(operation_id, "201" if operation_id.endswith("Document") else "202")
        assert example["request"]["parameters"]["body"]["value"] == body
    assert json.loads((SAMPLES / "error-400-createFeed-missing-params.json").read_text()) == (
        ERROR_400_CREATE_FEED
    )
    assert json.loads((SAMPLES / "error-429-QuotaExceeded.json").read_text()) == ERROR_429
    assert ACCESS_TOKEN in (SAMPLES / "lwa-token-exchange.http").read_text()


def test_create_feed_document_and_create_feed_bodies_match_the_model(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    rsps.add(responses.POST, DOCUMENTS_URL, json=SANDBOX["createFeedDocument", "201"], status=201)
    rsps.add(responses.POST, FEEDS_URL, json=SANDBOX["createFeed", "202"], status=202)

    document = client.create_feed_document("text/tab-separated-values; charset=UTF-8")
    feed_id = client.create_feed(document["feedDocumentId"])

    assert document == SANDBOX["createFeedDocument", "201"]
    assert feed_id == "3485934"
    document_body = json.loads(sent(rsps, 1).body)
    feed_body = json.loads(sent(rsps, 2).body)
    assert_body_matches_model("createFeedDocument", document_body)
    assert_body_matches_model("createFeed", feed_body)
    assert document_body == SANDBOX_REQUESTS["createFeedDocument"]
    assert feed_body == {
        "feedType": FEED_TYPE,
        "marketplaceIds": [JP_MARKETPLACE],
        "inputFeedDocumentId": "3d4e42b5-1d6e-44e8-a89c-2abfca0625bb",
    }
    assert sent(rsps, 1).headers["Content-Type"] == "application/json"


# ---- LWA ---------------------------------------------------------------------------------------


def test_token_exchange_sends_the_form_fields(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    rsps.add(responses.GET, f"{FEEDS_URL}/FeedId1", json=SANDBOX["getFeed", "200"])

    client.get_feed("FeedId1")

    token_request = sent(rsps, 0)
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "x-amz-access-token" not in token_request.headers
    assert parse_qs(token_request.body, strict_parsing=True) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [CREDENTIALS.refresh_token],
        "client_id": [CREDENTIALS.client_id],
        "client_secret": [CREDENTIALS.client_secret],
    }
    assert sent(rsps, 1).headers["x-amz-access-token"] == ACCESS_TOKEN
    assert sent(rsps, 1).headers["User-Agent"].startswith("crossship/")


def test_one_token_serves_every_call(rsps: responses.RequestsMock, client: AmazonClient) -> None:
    add_token(rsps)
    rsps.add(responses.POST, DOCUMENTS_URL, json=SANDBOX["createFeedDocument", "201"], status=201)
    rsps.add(responses.PUT, SANDBOX["createFeedDocument", "201"]["url"])
    rsps.add(responses.POST, FEEDS_URL, json=SANDBOX["createFeed", "202"], status=202)
    rsps.add(responses.GET, f"{FEEDS_URL}/3485934", json=SANDBOX["getFeed", "200"])

    document = client.create_feed_document(CONTENT_TYPE)
    client.upload(document["url"], b"feed", CONTENT_TYPE)
    feed_id = client.create_feed(document["feedDocumentId"])
    client.get_feed(feed_id)

    assert client.calls == {
        "token": 1,
        "createFeedDocument": 1,
        "upload": 1,
        "createFeed": 1,
        "getFeed": 1,
    }
    for call in rsps.calls:
        assert call.request.req_kwargs["timeout"] == (10.0, 60.0)


def test_403_renews_the_token_once_and_repeats_the_call(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps, "Atza|old")
    rsps.add(responses.GET, f"{FEEDS_URL}/FeedId1", status=403, json={"errors": []})
    add_token(rsps, "Atza|new")
    rsps.add(responses.GET, f"{FEEDS_URL}/FeedId1", json=SANDBOX["getFeed", "200"])

    assert client.get_feed("FeedId1")["processingStatus"] == "CANCELLED"
    assert sent(rsps, 1).headers["x-amz-access-token"] == "Atza|old"
    assert sent(rsps, 3).headers["x-amz-access-token"] == "Atza|new"
    assert client.calls == {"token": 2, "getFeed": 2}


def test_401_renews_the_token_too(rsps: responses.RequestsMock, client: AmazonClient) -> None:
    add_token(rsps)
    rsps.add(responses.POST, DOCUMENTS_URL, status=401)
    add_token(rsps)
    rsps.add(responses.POST, DOCUMENTS_URL, json=SANDBOX["createFeedDocument", "201"], status=201)

    assert client.create_feed_document(CONTENT_TYPE)["feedDocumentId"]


def test_403_twice_is_rejected(rsps: responses.RequestsMock, client: AmazonClient) -> None:
    denied = {
        "errors": [
            {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": "",
            }
        ]
    }
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, status=403, json=denied)
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, status=403, json=denied)

    error = outcome_of(lambda: client.create_feed("doc-1"))

    assert (error.outcome, error.status, error.code, error.operation) == (
        "rejected",
        403,
        "Unauthorized",
        "createFeed",
    )
    assert str(error).startswith(
        "createFeed: Amazon answered 403 Unauthorized: Access to requested resource is denied."
    )
    assert client.calls == {"token": 2, "createFeed": 2}


def test_refused_token_says_to_check_the_credentials_without_showing_them(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    # an answer that echoes what it was sent must not carry the secrets into the message
    echo = f"bad refresh_token {CREDENTIALS.refresh_token} for {CREDENTIALS.client_id}"
    rsps.add(
        responses.POST,
        DEFAULT_TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": echo},
    )

    error = outcome_of(lambda: client.create_feed("doc-1"))

    assert (error.outcome, error.operation, error.status, error.code) == (
        "not_sent",
        "token",
        400,
        "invalid_grant",
    )
    assert "check the LWA client id, client secret and refresh token" in str(error)
    assert not any(secret in str(error) for secret in SECRETS)
    assert client.calls == {"token": 1}


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 200, "json": {"token_type": "bearer"}},
        {"status": 200, "body": "<html>login</html>"},
        {"status": 401, "json": {"error": "invalid_client"}},
    ],
)
def test_token_failures_are_not_sent(
    rsps: responses.RequestsMock, client: AmazonClient, answer: dict
) -> None:
    rsps.add(responses.POST, DEFAULT_TOKEN_URL, **answer)

    error = outcome_of(lambda: client.get_feed("1"))

    assert (error.outcome, error.operation) == ("not_sent", "token")


def test_token_service_unreachable_is_retried_then_not_sent(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    client = AmazonClient(credentials=CREDENTIALS, sleep=sleeps.append, max_attempts=2)
    for _ in range(2):
        rsps.add(responses.POST, DEFAULT_TOKEN_URL, body=refused())

    error = outcome_of(lambda: client.get_feed("1"))

    assert (error.outcome, error.operation) == ("not_sent", "token")
    assert "connection refused" in str(error)
    assert client.calls == {"token": 2}


def test_incomplete_credentials_make_no_request(rsps: responses.RequestsMock) -> None:
    client = AmazonClient(credentials=Credentials("id", "", "Atzr|x"))

    error = outcome_of(lambda: client.get_feed("1"))

    assert (error.outcome, error.operation) == ("not_sent", "token")
    assert "incomplete" in str(error)
    assert len(rsps.calls) == 0


# ---- retries and outcomes ----------------------------------------------------------------------


def test_create_feed_429_then_success_creates_exactly_one_feed(
    rsps: responses.RequestsMock, client: AmazonClient, sleeps: list[float]
) -> None:
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, status=429, json=ERROR_429)
    rsps.add(responses.POST, FEEDS_URL, status=202, json=SANDBOX["createFeed", "202"])

    assert client.create_feed("doc-1") == "3485934"
    assert client.calls["createFeed"] == 2
    assert sleeps == [0.5]  # full jitter: rand() * base


def test_create_feed_500_is_unknown_and_not_repeated(
    rsps: responses.RequestsMock, client: AmazonClient, sleeps: list[float]
) -> None:
    add_token(rsps)
    rsps.add(
        responses.POST,
        FEEDS_URL,
        status=500,
        json={
            "errors": [{"code": "InternalFailure", "message": "We encountered an internal error."}]
        },
    )

    error = outcome_of(lambda: client.create_feed("doc-1"))

    assert (error.outcome, error.status, error.code) == ("unknown", 500, "InternalFailure")
    assert client.calls["createFeed"] == 1
    assert sleeps == []


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: nothing was sent."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/feeds/2021-06-30/feeds", reason))


def reset_after_sending() -> requests.ConnectionError:
    """What requests raises when the peer resets the connection after the request went out."""
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (refused(), "not_sent"),
        (requests.ConnectTimeout("connect timeout"), "not_sent"),
        (reset_after_sending(), "unknown"),
        (requests.ReadTimeout("read timeout"), "unknown"),
        (requests.exceptions.ChunkedEncodingError("cut"), "unknown"),
        # a ConnectionError that does not say when it happened counts as sent: the safe side
        (requests.ConnectionError("something"), "unknown"),
    ],
)
def test_create_feed_network_failures_are_never_repeated(
    rsps: responses.RequestsMock, client: AmazonClient, failure: Exception, outcome: str
) -> None:
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, body=failure)

    error = outcome_of(lambda: client.create_feed("doc-1"))

    assert (error.outcome, error.operation) == (outcome, "createFeed")
    assert client.calls["createFeed"] == 1


def test_get_feed_503_then_200_is_retried(
    rsps: responses.RequestsMock, client: AmazonClient, sleeps: list[float]
) -> None:
    add_token(rsps)
    rsps.add(responses.GET, f"{FEEDS_URL}/FeedId1", status=503, body="Service Unavailable")
    rsps.add(responses.GET, f"{FEEDS_URL}/FeedId1", json=SANDBOX["getFeed", "200"])

    assert client.get_feed("FeedId1") == SANDBOX["getFeed", "200"]
    assert client.calls == {"token": 1, "getFeed": 2}
    assert sleeps == [0.5]


def test_idempotent_calls_retry_network_failures(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    rsps.add(responses.POST, DOCUMENTS_URL, body=reset_after_sending())
    rsps.add(responses.POST, DOCUMENTS_URL, body=requests.ReadTimeout("slow"))
    rsps.add(responses.POST, DOCUMENTS_URL, json=SANDBOX["createFeedDocument", "201"], status=201)

    assert client.create_feed_document(CONTENT_TYPE)["url"]
    assert client.calls["createFeedDocument"] == 3


def test_backoff_doubles_up_to_the_cap_then_gives_up(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    client = AmazonClient(
        credentials=CREDENTIALS, sleep=sleeps.append, rand=lambda: 1.0, max_attempts=9
    )
    add_token(rsps)
    for _ in range(9):
        rsps.add(responses.GET, f"{FEEDS_URL}/1", status=500)

    error = outcome_of(lambda: client.get_feed("1"))

    assert sleeps == [1, 2, 4, 8, 16, 32, 60, 60]
    assert (error.outcome, error.status) == ("unknown", 500)
    assert client.calls["getFeed"] == 9


def test_429_on_every_attempt_is_not_sent(
    rsps: responses.RequestsMock, client: AmazonClient, sleeps: list[float]
) -> None:
    add_token(rsps)
    for _ in range(5):
        rsps.add(responses.POST, FEEDS_URL, status=429, json=ERROR_429)

    error = outcome_of(lambda: client.create_feed("doc-1"))

    assert (error.outcome, error.status, error.code) == ("not_sent", 429, "QuotaExceeded")
    assert "You exceeded your quota" in str(error)
    assert client.calls["createFeed"] == 5
    assert len(sleeps) == 4


def test_retry_after_is_honoured(
    rsps: responses.RequestsMock, client: AmazonClient, sleeps: list[float]
) -> None:
    add_token(rsps)
    rsps.add(
        responses.GET, f"{FEEDS_URL}/1", status=429, json=ERROR_429, headers={"Retry-After": "7"}
    )
    rsps.add(responses.GET, f"{FEEDS_URL}/1", json=SANDBOX["getFeed", "200"])

    client.get_feed("1")

    assert sleeps == [7.0]


def test_retry_after_beyond_the_cap_gives_up_rather_than_hold_the_run(
    rsps: responses.RequestsMock, client: AmazonClient, sleeps: list[float]
) -> None:
    add_token(rsps)
    rsps.add(
        responses.GET, f"{FEEDS_URL}/1", status=429, json=ERROR_429, headers={"Retry-After": "3600"}
    )

    error = outcome_of(lambda: client.get_feed("1"))

    assert error.outcome == "not_sent"
    assert sleeps == []


# ---- Amazon's messages -------------------------------------------------------------------------


def test_400_errors_body_becomes_a_clear_message(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, status=400, json=ERROR_400_CREATE_FEED)

    error = outcome_of(lambda: client.create_feed("doc-1"))

    assert str(error) == (
        "createFeed: Amazon answered 400 InvalidInput: One or more required parameters missing "
        "(marketplaceIds;feedType;inputFeedDocumentId)"
    )
    assert (error.outcome, error.status, error.code) == ("rejected", 400, "InvalidInput")
    assert client.calls["createFeed"] == 1


def test_sandbox_400_is_rejected(rsps: responses.RequestsMock, client: AmazonClient) -> None:
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, status=400, json=SANDBOX["createFeed", "400"])

    error = outcome_of(lambda: client.create_feed("badDocumentId"))

    assert str(error) == "createFeed: Amazon answered 400 400: Invalid input (Invalid input)"
    assert error.outcome == "rejected"


def test_html_502_becomes_a_clear_message(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    rsps.add(responses.POST, FEEDS_URL, status=502, body=HTML_502, content_type="text/html")

    error = outcome_of(lambda: client.create_feed("doc-1"))

    message = str(error)
    assert message.startswith("createFeed: Amazon answered 502 Bad Gateway with a body that is not")
    assert "<title>502 Bad Gateway</title>" in message
    assert "\n" not in message and len(message) < 320
    assert (error.outcome, error.status) == ("unknown", 502)


@pytest.mark.parametrize(
    ("operation", "outcome"), [("createFeed", "unknown"), ("createFeedDocument", "not_sent")]
)
@pytest.mark.parametrize("body", ['{"feedId": "34859', "{}", '{"feedDocumentId": ""}', "[]", ""])
def test_a_2xx_answer_that_cannot_be_read(
    rsps: responses.RequestsMock, client: AmazonClient, operation: str, outcome: str, body: str
) -> None:
    add_token(rsps)
    url = FEEDS_URL if operation == "createFeed" else DOCUMENTS_URL
    rsps.add(responses.POST, url, status=202, body=body, content_type="application/json")

    if operation == "createFeed":
        error = outcome_of(lambda: client.create_feed("doc-1"))
    else:
        error = outcome_of(lambda: client.create_feed_document(CONTENT_TYPE))

    assert (error.outcome, error.operation) == (outcome, operation)
    assert str(error).startswith(f"{operation}: Amazon")
    assert client.calls[operation] == 1


def test_a_redirect_is_not_followed(rsps: responses.RequestsMock, client: AmazonClient) -> None:
    add_token(rsps)
    rsps.add(
        responses.GET,
        f"{FEEDS_URL}/1",
        status=307,
        headers={"Location": "https://elsewhere.example/steal"},
    )

    error = outcome_of(lambda: client.get_feed("1"))

    assert (error.outcome, error.status) == ("rejected", 307)
    assert len(rsps.calls) == 2  # token and getFeed: the access token went nowhere else


# ---- upload and download -----------------------------------------------------------------------


def test_upload_puts_the_exact_content_type_and_no_access_token(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    data = "注文番号\t123\n".encode("cp932")
    rsps.add(responses.PUT, PRESIGNED)

    client.upload(PRESIGNED, data, CONTENT_TYPE)

    request = sent(rsps, 0)
    assert request.headers["Content-Type"] == CONTENT_TYPE
    assert "x-amz-access-token" not in {name.lower() for name in request.headers}
    assert request.body == data
    assert client.calls == {"upload": 1}  # no token for a presigned URL


def test_upload_signature_mismatch_names_the_cause(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
        "<Message>The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.</Message><RequestId>4442587FB7D0A2F9</RequestId>"
        "</Error>"
    )
    rsps.add(responses.PUT, PRESIGNED, status=403, body=xml, content_type="application/xml")

    error = outcome_of(lambda: client.upload(PRESIGNED, b"x", "text/plain"))

    assert (error.outcome, error.status, error.code, error.operation) == (
        "rejected",
        403,
        "SignatureDoesNotMatch",
        "upload",
    )
    assert str(error).startswith(
        "upload: the document storage (S3) answered 403 SignatureDoesNotMatch: The request "
        "signature we calculated does not match"
    )
    assert "Content-Type must equal the contentType" in str(error)
    assert "SIGNATUREsentinel" not in str(error)
    assert client.calls == {"upload": 1}


def test_upload_to_a_plain_http_url_makes_no_request(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    error = outcome_of(lambda: client.upload("http://bucket.example.com/doc?sig=x", b"x", "t/p"))

    assert (error.outcome, error.operation) == ("not_sent", "upload")
    assert str(error).startswith(
        "upload: the document URL Amazon gave 'http://bucket.example.com/doc' is refused"
    )
    assert len(rsps.calls) == 0


REPORT = "Feed Processing Summary:\n\tNumber of records processed\t\t1\n".encode("cp932")


def test_download_gunzips(rsps: responses.RequestsMock, client: AmazonClient) -> None:
    rsps.add(
        responses.GET,
        PRESIGNED,
        body=gzip.compress(REPORT),
        content_type="text/plain; charset=Windows-31J",
    )

    assert client.download(PRESIGNED, "GZIP") == (REPORT, "Windows-31J")
    assert client.calls == {"download": 1}


def test_download_does_not_gunzip_what_the_transport_already_decoded(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    rsps.add(responses.GET, PRESIGNED, body=REPORT, content_type="text/plain")

    assert client.download(PRESIGNED, "GZIP") == (REPORT, None)


def test_download_with_content_encoding_gzip_is_gunzipped_once(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    rsps.add(
        responses.GET,
        PRESIGNED,
        body=gzip.compress(REPORT),
        headers={"Content-Encoding": "gzip"},
        content_type="text/plain; charset=UTF-8",
    )

    assert client.download(PRESIGNED, "GZIP") == (REPORT, "UTF-8")


def test_download_of_a_gzip_document_sent_with_content_encoding_gzip(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    # the document is gzip and the transport gzips it again: requests undoes one, we the other
    rsps.add(
        responses.GET,
        PRESIGNED,
        body=gzip.compress(gzip.compress(REPORT)),
        headers={"Content-Encoding": "gzip"},
    )

    assert client.download(PRESIGNED, "GZIP")[0] == REPORT


def test_download_truncated_gzip_is_a_clear_error(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    rsps.add(responses.GET, PRESIGNED, body=gzip.compress(REPORT * 50)[:-30])

    error = outcome_of(lambda: client.download(PRESIGNED, "GZIP"))

    assert error.operation == "download"
    assert "truncated or corrupt" in str(error)


def test_download_uncompressed_keeps_the_bytes(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    rsps.add(
        responses.GET,
        PRESIGNED,
        body=REPORT,
        content_type='text/tab-separated-values; charset="Shift_JIS"',
    )

    assert client.download(PRESIGNED, None) == (REPORT, "Shift_JIS")


def test_download_s3_error_is_extracted_and_retried_on_5xx(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    rsps.add(
        responses.GET,
        PRESIGNED,
        status=503,
        body="<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>",
    )
    rsps.add(
        responses.GET,
        PRESIGNED,
        status=403,
        body="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
    )

    error = outcome_of(lambda: client.download(PRESIGNED, None))

    assert str(error) == (
        "download: the document storage (S3) answered 403 AccessDenied: Request has expired"
    )
    assert client.calls == {"download": 2}


def test_get_feed_document_keeps_the_compression(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    document = {**SANDBOX["getFeedDocument", "200"], "compressionAlgorithm": "GZIP"}
    rsps.add(responses.GET, f"{DOCUMENTS_URL}/0356cf79-b8b0-4226-b4b9-0ee058ea5760", json=document)

    assert client.get_feed_document("0356cf79-b8b0-4226-b4b9-0ee058ea5760") == document


# ---- getFeeds ----------------------------------------------------------------------------------


def test_get_feeds_follows_next_token_with_model_parameters(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    first = SANDBOX["getFeeds", "200"]
    second = {"feeds": [{**first["feeds"][0], "feedId": "FeedId2"}]}
    add_token(rsps)
    rsps.add(responses.GET, FEEDS_URL, json=first)
    rsps.add(responses.GET, FEEDS_URL, json=second)
    since = datetime(2024, 3, 11, 22, 16, 24, 630000, tzinfo=timezone(timedelta(hours=9)))

    feeds = client.get_feeds(created_since=since, processing_statuses=("IN_QUEUE", "DONE"))

    assert [feed["feedId"] for feed in feeds] == ["FeedId1", "FeedId2"]
    query = parse_qs(urlsplit(sent(rsps, 1).url).query, strict_parsing=True)
    assert query == {
        "feedTypes": [FEED_TYPE],
        "marketplaceIds": [JP_MARKETPLACE],
        "pageSize": ["100"],
        "createdSince": ["2024-03-11T13:16:24Z"],
        "processingStatuses": ["IN_QUEUE,DONE"],
    }
    assert parse_qs(urlsplit(sent(rsps, 2).url).query, strict_parsing=True) == {
        "nextToken": [first["nextToken"]]
    }
    known = {p["name"] for p in model_operation("getFeeds")["parameters"]}
    assert set(query) <= known and "nextToken" in known
    assert client.calls == {"token": 1, "getFeeds": 2}


def test_get_feeds_stops_on_a_repeated_next_token(
    rsps: responses.RequestsMock, client: AmazonClient
) -> None:
    add_token(rsps)
    for _ in range(2):
        rsps.add(responses.GET, FEEDS_URL, json=SANDBOX["getFeeds", "200"])

    error = outcome_of(lambda: client.get_feeds(created_since=datetime.now(UTC)))

    assert "repeated a nextToken" in str(error)
    assert client.calls["getFeeds"] == 2


def test_get_feeds_refuses_a_naive_time() -> None:
    client = AmazonClient(credentials=CREDENTIALS)
    with pytest.raises(ValueError, match="timezone-aware"):
        client.get_feeds(created_since=datetime(2024, 3, 11))


# ---- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://sellingpartnerapi-fe.amazon.com",
        "https://example.com:8443/x",
        "HTTPS://api.amazon.com/auth/o2/token",
        "http://127.0.0.1:8080",
        "http://127.9.9.9/token",
        "http://[::1]:1",
        "http://localhost",
        "http://LOCALHOST:5000/auth/o2/token",
    ],
)
def test_check_url_allows(url: str) -> None:
    assert check_url(url, "endpoint") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://sellingpartnerapi-fe.amazon.com",
        "http://10.0.0.1:8080",
        "http://[::2]:1",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
        "sellingpartnerapi-fe.amazon.com",
        "https://",
        "http://127.0.0.1:notaport",
    ],
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        check_url(url, "endpoint")


def test_check_url_says_why() -> None:
    with pytest.raises(ConfigError) as caught:
        check_url("http://example.com/token?x=1", "token URL")
    assert str(caught.value) == (
        "token URL 'http://example.com/token' is refused: use https://; plain http:// is "
        "allowed only to a loopback address (127.0.0.0/8, ::1, localhost)"
    )


@given(st.ip_addresses(v=4))
def test_check_url_plain_http_only_for_127_8(address) -> None:
    url = f"http://{address}:8080/"
    assert check_url(f"https://{address}/", "endpoint")
    if address.packed[0] == 127:
        assert check_url(url, "endpoint") == url
    else:
        with pytest.raises(ConfigError):
            check_url(url, "endpoint")


@pytest.mark.parametrize("field", ["endpoint", "token_url"])
def test_a_refused_url_makes_no_request(rsps: responses.RequestsMock, field: str) -> None:
    with pytest.raises(ConfigError):
        AmazonClient(credentials=CREDENTIALS, **{field: "http://example.com"})
    assert len(rsps.calls) == 0


def test_a_loopback_sandbox_is_used_as_given(rsps: responses.RequestsMock) -> None:
    client = AmazonClient(
        credentials=CREDENTIALS,
        endpoint="http://127.0.0.1:8080/",
        token_url="http://localhost:8080/auth/o2/token",
    )
    rsps.add(responses.POST, "http://localhost:8080/auth/o2/token", json=TOKEN_ANSWER)
    rsps.add(
        responses.GET,
        "http://127.0.0.1:8080/feeds/2021-06-30/feeds/1",
        json=SANDBOX["getFeed", "200"],
    )

    assert client.get_feed("1")["feedId"] == "FeedId1"


# ---- secrets -----------------------------------------------------------------------------------


def test_secrets_never_in_repr_messages_or_logs(
    rsps: responses.RequestsMock, client: AmazonClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="crossship.amazon")
    add_token(rsps)
    rsps.add(responses.GET, f"{FEEDS_URL}/1", status=403)
    add_token(rsps)
    # an answer echoing the access token and the secrets back
    rsps.add(
        responses.GET,
        f"{FEEDS_URL}/1",
        status=400,
        body=f"<html>token {ACCESS_TOKEN} secret {CREDENTIALS.client_secret}</html>",
    )
    rsps.add(responses.PUT, PRESIGNED, body=reset_after_sending())
    for _ in range(4):
        rsps.add(responses.PUT, PRESIGNED, status=500, body="<Error><Code>InternalError</Code>")

    errors = [
        outcome_of(lambda: client.get_feed("1")),
        outcome_of(lambda: client.upload(PRESIGNED, b"x", "text/plain")),
    ]

    texts = [
        repr(CREDENTIALS),
        str(CREDENTIALS),
        repr(client),
        *map(str, errors),
        *map(repr, errors),
        caplog.text,
    ]
    for text in texts:
        for secret in (*SECRETS, "SIGNATUREsentinel"):
            assert secret not in text, (secret, text)
    assert (
        "getFeed GET https://sellingpartnerapi-fe.amazon.com/feeds/2021-06-30/feeds/1 -> 403"
        in (caplog.text)
    )


# ---- real sockets on 127.0.0.1 -----------------------------------------------------------------


@contextmanager
def server(behaviour: str) -> Iterator[str]:
    """A one-connection TCP server that reads a request then closes or stays silent."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    done = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            if behaviour == "silent":
                done.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        done.set()
        thread.join(5)
        listener.close()


def closed_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def create_feed_against(endpoint: str, rsps: responses.RequestsMock) -> AmazonError:
    rsps.add_passthru(endpoint)
    add_token(rsps)
    client = AmazonClient(
        credentials=CREDENTIALS, endpoint=endpoint, timeout=(2.0, 0.3), sleep=lambda s: None
    )
    error = outcome_of(lambda: client.create_feed("doc-1"))
    assert client.calls == {"token": 1, "createFeed": 1}
    return error


def test_real_connection_refused_is_not_sent(rsps: responses.RequestsMock) -> None:
    error = create_feed_against(closed_port(), rsps)

    assert error.outcome == "not_sent"
    assert "connection refused" in str(error) and "nothing was sent" in str(error)


def test_real_connection_closed_after_sending_is_unknown(rsps: responses.RequestsMock) -> None:
    with server("close") as endpoint:
        error = create_feed_against(endpoint, rsps)

    assert error.outcome == "unknown"
    assert "after the request was sent" in str(error)


def test_real_read_timeout_is_unknown(rsps: responses.RequestsMock) -> None:
    with server("silent") as endpoint:
        error = create_feed_against(endpoint, rsps)

    assert error.outcome == "unknown"
    assert "no answer within the read timeout" in str(error)
