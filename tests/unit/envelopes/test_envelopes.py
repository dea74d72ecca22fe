"""Events as AWS delivers them: bare, in an SNS notification, in an EventBridge event, or both."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.envelopes import read_event
from exporter.events import Event, InvalidEvent, parse_event
from tests.unit.processing.processor_fakes import bodies

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
EVENT = {"type": "purchase", "value": 12.5, "occurred_at": "2020-10-06 10:02:05"}
PURCHASE = Event("purchase", 12_500_000, datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC))


def sns(message: str, *, message_id: str = "sns-1", **extra: Any) -> bytes:
    """A notification as SNS delivers it to SQS with raw delivery off (its spacing included)."""
    notification = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Message": message,
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        **extra,
    }
    return json.dumps(notification, indent=2, separators=(",", " : ")).encode()


def eventbridge(detail: Any, *, event_id: str = "eb-1") -> bytes:
    """An event as an EventBridge rule delivers it to an SQS target."""
    envelope = {
        "version": "0",
        "id": event_id,
        "detail-type": "Order Placed",
        "source": "com.example.shop",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    return json.dumps(envelope).encode()


def test_a_bare_event_is_read_as_before() -> None:
    """A body without an envelope gives the same event as the contract, and no envelope."""
    raw = json.dumps(EVENT).encode()
    assert read_event(raw) == (parse_event(raw), None)


def test_an_sns_notification_gives_its_message_and_its_id() -> None:
    """The event is the notification's Message; identity and trace context come with it."""
    raw = sns(
        json.dumps(EVENT),
        MessageAttributes={"traceparent": {"Type": "String", "Value": TRACEPARENT}},
    )
    event, envelope = read_event(raw)
    assert event == PURCHASE
    assert envelope is not None
    assert (envelope.kind, envelope.id, envelope.identity) == ("sns", "sns-1", "sns:sns-1")
    assert envelope.traceparent == TRACEPARENT


def test_an_sns_message_keeps_its_exact_value_and_id() -> None:
    """The Message is read by the event contract itself: exact decimals, the producer's id."""
    inner = '{"type":"t","value":0.1234565,"occurred_at":"2020-10-06 10:02:05","id":"order-7"}'
    event, _ = read_event(sns(inner))
    assert (event.value_micros, event.id) == (123_456, "order-7")


def test_an_eventbridge_event_gives_its_detail_exactly() -> None:
    """The event is `detail`, with every digit of its value (rounded half-even to millionths)."""
    raw = eventbridge({**EVENT, "value": 0}).replace(b'"value": 0', b'"value": 0.0000005')
    event, envelope = read_event(raw)
    assert event == Event("purchase", 0, PURCHASE.occurred_at)
    assert envelope is not None
    assert envelope.identity == "eventbridge:eb-1"
    assert envelope.traceparent is None


def test_eventbridge_through_sns_is_unwrapped_twice() -> None:
    """EventBridge to SNS to SQS: the EventBridge id is the identity, SNS's trace context kept."""
    raw = sns(
        eventbridge(EVENT, event_id="eb-9").decode(),
        MessageAttributes={"traceparent": {"Type": "String", "Value": TRACEPARENT}},
    )
    event, envelope = read_event(raw)
    assert event == PURCHASE
    assert envelope is not None
    assert (envelope.identity, envelope.traceparent) == ("eventbridge:eb-9", TRACEPARENT)
    assert "SNS notification 'sns-1'" in envelope.where


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (
            sns(json.dumps({**EVENT, "value": "lots"})),
            "bad_value",
            "the event in SNS notification 'sns-1' (topic 'orders'): 'value' must be a number",
        ),
        (
            sns("not json"),
            "not_json",
            "the event in SNS notification 'sns-1' (topic 'orders'): body is not JSON",
        ),
        (
            eventbridge([1, 2]),
            "not_object",
            "the event in EventBridge event 'eb-1' ('com.example.shop', 'Order Placed'): "
            "'detail' must be a JSON object, got an array",
        ),
        (
            eventbridge({"type": "purchase", "value": 1}),
            "missing_field",
            "EventBridge event 'eb-1'",
        ),
        (sns(json.dumps(EVENT), message_id="x" * 129), "bad_id", "'MessageId' must be 1-128"),
    ],
    ids=["sns-bad-value", "sns-not-json", "eventbridge-not-object", "eventbridge-missing", "id"],
)
def test_a_malformed_inner_event_is_rejected_naming_its_envelope(
    raw: bytes, reason: str, detail: str
) -> None:
    """The contract's own reason, and a detail that says which envelope held the event."""
    with pytest.raises(InvalidEvent) as raised:
        read_event(raw)
    assert raised.value.reason == reason
    assert detail in raised.value.detail


def test_the_size_limit_applies_to_the_event_inside() -> None:
    """An SNS Message over the limit is too large; the notification around it does not count."""
    small = json.dumps(EVENT)
    limit = len(small) + 10
    assert len(sns(small)) > limit
    assert read_event(sns(small), limit)[0] == PURCHASE
    with pytest.raises(InvalidEvent) as raised:
        read_event(sns(json.dumps({**EVENT, "pad": "x" * 20})), limit)
    assert raised.value.reason == "too_large"
    assert "SNS notification" in raised.value.detail


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({**EVENT, "TopicArn": "arn:aws:sns:x", "Message": "m"}).encode(),
        json.dumps(
            {
                **EVENT,
                "Type": "SubscriptionConfirmation",
                "TopicArn": "t",
                "Message": "m",
                "MessageId": "i",
            }
        ).encode(),
        json.dumps({**EVENT, "detail-type": "x", "source": "y", "id": "z"}).encode(),
    ],
    ids=["sns-like-keys", "not-a-notification", "no-detail"],
)
def test_an_event_that_only_resembles_an_envelope_is_a_bare_event(raw: bytes) -> None:
    """Without the whole shape, a body is the producer's own event."""
    assert read_event(raw) == (parse_event(raw), None)


@given(bodies)
def test_without_an_envelope_every_body_reads_as_the_contract_says(raw: bytes) -> None:
    """For any body that is no envelope, the answer (event or reason) is the contract's own."""
    try:
        expected: tuple[Event, None] | str = (parse_event(raw), None)
    except InvalidEvent as exc:
        expected = exc.reason
    try:
        got: object = read_event(raw)
    except InvalidEvent as exc:
        got = exc.reason
    assert got == expected


@given(st.one_of(bodies, st.text(max_size=200).map(str.encode)))
def test_any_envelope_content_only_ever_raises_invalid_event(inner: bytes) -> None:
    """Whatever an SNS Message or EventBridge detail holds, the reader raises InvalidEvent or
    returns an event; nothing else escapes."""
    text = inner.decode("utf-8", "replace")
    for raw in (sns(text), eventbridge(text), sns(eventbridge(text).decode())):
        with contextlib.suppress(InvalidEvent):
            read_event(raw)
