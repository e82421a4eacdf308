"""Yahoo!ショッピング's XML: requests built with ElementTree, answers read with defusedxml.

Every value goes into the tree as text, so the library escapes it (``<``, ``&``, ``]]>``, quotes
and Japanese reach Yahoo as written); nothing is put together with string formatting. Answers are
untrusted: defusedxml refuses entity declarations and DTDs (billion laughs, external entities).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from crossship.i18n import Message
from crossship.yahoo.codes import COMPLETED, SHIPPED

CONTENT_TYPE = "application/xml; charset=UTF-8"
OPERATOR = "crossship"
SNIPPET_CHARS = 200
# characters XML 1.0 cannot carry at all (ElementTree would write them and break the document)
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True)
class Shipment:
    """One orderShipStatusChange: every value is the text that goes into the request."""

    order_id: str
    ship_company: str
    ship_date: str  # YYYYMMDD, Japan time
    tracking_numbers: tuple[str, ...] = ()
    no_tracking_reason: str = ""


class AnswerError(ValueError):
    """An answer that is not the XML Yahoo documents; ``kept`` says what it was instead, in the
    reader's language."""

    def __init__(self, message: Message):
        super().__init__(message.render("en"))
        self.kept = message


@dataclass(frozen=True)
class Answer:
    """A readable answer: ``ok`` with Yahoo's warnings, or Yahoo's error code and message."""

    ok: bool
    warnings: tuple[str, ...] = ()
    code: str = ""
    # Yahoo's words; ours (a Message) only when Yahoo said no more than "not OK"
    message: str | Message = ""
    fields: tuple[tuple[str, str], ...] = ()  # orderInfo: each leaf of OrderInfo (tag, text)

    @property
    def said(self) -> str | Message:
        """Yahoo's own code and words, as Yahoo wrote them ("code: message", or whichever of the
        two it gave)."""
        if isinstance(self.message, Message):
            if not self.code:
                return self.message
            return Message("{code}: {message}", {"code": self.code, "message": self.message})
        return ": ".join(part for part in (self.code, self.message) if part)


def _request(seller_id: str, order_id: str, operator: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("Req")
    target = ET.SubElement(root, "Target")
    ET.SubElement(target, "OrderId").text = order_id
    ET.SubElement(target, "IsPointFix").text = "true"
    ET.SubElement(target, "OperationUser").text = operator
    order = ET.SubElement(root, "Order")
    return root, order


def _finish(root: ET.Element, seller_id: str) -> bytes:
    ET.SubElement(root, "SellerId").text = seller_id
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def ship_request(seller_id: str, shipment: Shipment, operator: str = OPERATOR) -> bytes:
    """The orderShipStatusChange body: 出荷済み with company, tracking numbers and date."""
    root, order = _request(seller_id, shipment.order_id, operator)
    ship = ET.SubElement(order, "Ship")
    ET.SubElement(ship, "ShipStatus").text = SHIPPED
    ET.SubElement(ship, "ShipCompanyCode").text = shipment.ship_company
    for number, tracking in enumerate(shipment.tracking_numbers, start=1):
        ET.SubElement(ship, f"ShipInvoiceNumber{number}").text = tracking
    if shipment.no_tracking_reason and not shipment.tracking_numbers:
        ET.SubElement(ship, "ShipInvoiceNumberEmptyReason").text = shipment.no_tracking_reason
    ET.SubElement(ship, "ShipDate").text = shipment.ship_date
    return _finish(root, seller_id)


def complete_request(seller_id: str, order_id: str, operator: str = OPERATOR) -> bytes:
    """The orderStatusChange body: order status 5 (完了)."""
    root, order = _request(seller_id, order_id, operator)
    ET.SubElement(order, "OrderStatus").text = COMPLETED
    return _finish(root, seller_id)


def info_request(seller_id: str, order_id: str, fields: str) -> bytes:
    """The orderInfo body: the named fields of one order."""
    root = ET.Element("Req")
    target = ET.SubElement(root, "Target")
    ET.SubElement(target, "OrderId").text = order_id
    ET.SubElement(target, "Field").text = fields
    return _finish(root, seller_id)


def parse_xml(content: bytes) -> ET.Element:
    """Parse untrusted XML; AnswerError says what the body was when it is not XML."""
    if not content.strip():
        raise AnswerError(Message("an empty body"))
    if _looks_like_html(content):
        title = _title(content)
        if title:
            raise AnswerError(Message("an HTML page, not XML ({title})", {"title": title}))
        raise AnswerError(Message("an HTML page, not XML"))
    try:
        return DET.fromstring(content, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise AnswerError(
            Message("XML with a forbidden construct ({name})", {"name": type(exc).__name__})
        ) from None
    except ET.ParseError as exc:
        raise AnswerError(
            Message(
                "XML that cannot be read ({error}): {snippet}",
                {"error": str(exc), "snippet": repr(snippet(content))},
            )
        ) from None


def read_answer(content: bytes, *, keep: bool = False) -> Answer:
    """A 2xx answer's ResultSet, or an Error document (any status); ``keep``: OrderInfo's leaves."""
    root = parse_xml(content)
    if root.tag == "Error":
        return Answer(False, code=_text(root, "Code"), message=_text(root, "Message"))
    if root.tag != "ResultSet":
        raise AnswerError(
            Message("XML without a ResultSet or Error (root <{tag}>)", {"tag": root.tag})
        )
    result = root.find("Result")
    if result is None:
        raise AnswerError(Message("a ResultSet without a Result"))
    status = _text(result, "Status")
    warnings = tuple(_describe(w) for w in result.iter("Warning"))
    if status == "OK":
        kept: tuple[tuple[str, str], ...] = ()
        info = result.find("OrderInfo")
        if keep and info is not None:
            kept = tuple((e.tag, (e.text or "").strip()) for e in info.iter() if len(e) == 0)
        return Answer(True, warnings=warnings, fields=kept)
    error = result.find("Error")
    if error is not None:
        return Answer(False, code=_text(error, "Code"), message=_text(error, "Message"))
    if warnings:
        return Answer(False, code=status or "", message="; ".join(warnings))
    return Answer(
        False, code=status or "", message=Message("Yahoo's answer is not OK and gives no reason")
    )


def read_error(content: bytes) -> Answer | None:
    """A non-2xx answer's ``<Error>`` (code and message), or None when it holds none."""
    try:
        answer = read_answer(content)
    except AnswerError:
        return None
    return None if answer.ok else answer


def describe_body(content: bytes) -> Message:
    """What an unreadable body was, for a message: an HTML page, empty, or a snippet."""
    try:
        parse_xml(content)
    except AnswerError as exc:
        return exc.kept
    return Message("XML Yahoo does not document: {snippet}", {"snippet": repr(snippet(content))})


def _describe(element: ET.Element) -> str:
    code, message = _text(element, "Code"), _text(element, "Message")
    if code or message:
        return f"{code}: {message}" if code and message else code or message
    return " ".join("".join(element.itertext()).split())


def _text(element: ET.Element, name: str) -> str:
    found = element.find(name)
    return " ".join((found.text or "").split()) if found is not None else ""


def _looks_like_html(content: bytes) -> bool:
    head = content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]


def _title(content: bytes) -> str:
    text = content[:4096].decode("utf-8", "replace")
    found = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    title = " ".join(html.unescape(found.group(1)).split()) if found else ""
    return repr(title[:SNIPPET_CHARS]) if title else ""


def snippet(content: bytes) -> str:
    text = content[: SNIPPET_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:SNIPPET_CHARS]
