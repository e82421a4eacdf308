"""The Amazon shipping-confirmation flat file: rows, checks, rendering, splitting (SPEC §3, §7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crossship.amazon.feed import (
    ENCODINGS,
    MAX_FEED_BYTES,
    Check,
    FeedLine,
    FeedRenderer,
    check_order,
    content_type,
    feed_lines,
)
from crossship.errors import ConfigError, CrossshipError
from crossship.i18n import render

SAMPLES = Path(__file__).parent / "fixtures" / "amazon"
SAMPLE_HEADERS = {
    "utf-8": "jp-shipping-confirmation-template-header_UTF8.tsv",
    "cp932": "jp-shipping-confirmation-template-header_CP932.tsv",
}
# the samples' own line endings: Amazon's UTF-8 download uses LF, the Shift_JIS one CRLF
NEWLINE = {"utf-8": b"\n", "cp932": b"\r\n"}
HEADER_TEXT = (
    "TemplateType=OrderFulfillment\tVersion=2011.1102\t"
    "この行はAmazonが使用しますので変更や削除しないでください。\n"
    "注文番号\t注文商品番号\t出荷数\t出荷日\t配送業者コード\t配送業者名\t"
    "お問い合わせ伝票番号\t配送方法\t代金引換\n"
    "order-id\torder-item-id\tquantity\tship-date\tcarrier-code\tcarrier-name\t"
    "tracking-number\tship-method\tcod-collection-method\n"
)


def expected_header(encoding: str) -> bytes:
    """Amazon's sample header (tests/fixtures/amazon), checked against the same text built here."""
    sample = (SAMPLES / SAMPLE_HEADERS[encoding]).read_bytes()
    built = HEADER_TEXT.replace("\n", NEWLINE[encoding].decode()).encode(ENCODINGS[encoding][0])
    assert sample == built
    return sample


def make_order(**changes: Any) -> dict[str, Any]:
    order = {
        "order_no": "1001",
        "store": "amazon-main",
        "mall_order_id": "250-1234567-7654321",
        "phase": "出荷済",
        "category": "normal",
        "fba": 0,
        "bundle_parent": None,
        "split_from": None,
        "ship_date": "2024-05-01",
        "carrier": "ヤマト",
        "tracking_number": "123456789012",
    }
    order.update(changes)
    return order


def make_carrier(**changes: Any) -> dict[str, Any]:
    carrier = {
        "name": "ヤマト",
        "amazon_carrier_code": "Yamato Transport",
        "amazon_carrier_name": "ヤマト運輸",
        "amazon_ship_method": "宅急便",
    }
    carrier.update(changes)
    return carrier


def item(line: int, item_id: str | None, quantity: int | None = 1, sku: str = "SKU") -> dict:
    return {"line": line, "item_id": item_id, "sku": sku, "quantity": quantity}


def line_for(order_no: str, **changes: str) -> FeedLine:
    values = {
        "order_no": order_no,
        "order_id": "250-1234567-7654321",
        "order_item_id": "",
        "quantity": "",
        "ship_date": "2024-05-01",
        "carrier_code": "Yamato Transport",
        "carrier_name": "ヤマト運輸",
        "tracking_number": "123456789012",
        "ship_method": "宅急便",
    }
    values.update(changes)
    return FeedLine(**values)


def rows(feed: bytes, encoding: str) -> list[list[str]]:
    """The data rows of a feed, each split into its tab-separated values."""
    text = feed.decode(ENCODINGS[encoding][0])
    records = text.split(NEWLINE[encoding].decode())
    assert records[-1] == ""  # the feed ends with a line ending
    return [record.split("\t") for record in records[3:-1]]


# ---------------------------------------------------------------------------------------------
# Encodings and the header


def test_content_types_name_the_charset() -> None:
    assert content_type("utf-8") == "text/tab-separated-values; charset=UTF-8"
    assert content_type("cp932") == "text/tab-separated-values; charset=Shift_JIS"
    with pytest.raises(ConfigError, match="unknown feed encoding"):
        content_type("latin-1")


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_header_is_byte_for_byte_the_sample(encoding: str) -> None:
    feed = FeedRenderer(encoding).render([line_for("1001")])
    header = expected_header(encoding)
    assert feed.startswith(header)
    assert len(header.split(NEWLINE[encoding])) == 4  # three rows, each ended by the line ending


def test_samples_differ_in_line_endings() -> None:
    # the reason for a line ending per encoding: the samples themselves differ
    assert b"\r\n" not in expected_header("utf-8")
    assert expected_header("cp932").count(b"\r\n") == 3


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_data_rows_use_the_header_line_ending(encoding: str) -> None:
    feed = FeedRenderer(encoding).render([line_for("1001"), line_for("1002")])
    body = feed[len(expected_header(encoding)) :]
    assert body.count(NEWLINE[encoding]) == 2
    assert body.endswith(NEWLINE[encoding])
    if encoding == "utf-8":
        assert b"\r" not in body
    else:
        assert body.count(b"\n") == 2  # every LF is part of a CRLF


def test_empty_feed_is_the_header_alone() -> None:
    assert FeedRenderer("cp932").render([]) == expected_header("cp932")


# ---------------------------------------------------------------------------------------------
# Which rows an order gives


def test_order_without_item_lines_gives_one_row_with_item_columns_empty() -> None:
    lines = feed_lines(make_order(), [], make_carrier())
    assert lines == [
        FeedLine(
            order_no="1001",
            order_id="250-1234567-7654321",
            order_item_id="",
            quantity="",
            ship_date="2024-05-01",
            carrier_code="Yamato Transport",
            carrier_name="ヤマト運輸",
            tracking_number="123456789012",
            ship_method="宅急便",
            cod_collection_method="",
        )
    ]
    assert rows(FeedRenderer().render(lines), "utf-8") == [
        [
            "250-1234567-7654321",
            "",
            "",
            "2024-05-01",
            "Yamato Transport",
            "ヤマト運輸",
            "123456789012",
            "宅急便",
            "",
        ]
    ]


def test_item_lines_without_ids_give_one_row_per_order() -> None:
    lines = feed_lines(make_order(), [item(1, None, 2), item(2, "", 1)], make_carrier())
    assert [(x.order_item_id, x.quantity) for x in lines] == [("", "")]


def test_item_lines_with_ids_give_one_row_each_with_quantity() -> None:
    items = [item(1, "11111111111111", 2), item(2, "22222222222222", None)]
    lines = feed_lines(make_order(), items, make_carrier())
    assert [(x.order_item_id, x.quantity) for x in lines] == [
        ("11111111111111", "2"),
        ("22222222222222", "1"),  # quantity not given: one
    ]
    assert {x.order_no for x in lines} == {"1001"}
    feed_rows = rows(FeedRenderer().render(lines), "utf-8")
    assert [r[:3] for r in feed_rows] == [
        ["250-1234567-7654321", "11111111111111", "2"],
        ["250-1234567-7654321", "22222222222222", "1"],
    ]


def test_missing_optional_values_are_empty_columns() -> None:
    order = make_order(tracking_number=None)
    carrier = make_carrier(amazon_carrier_name=None, amazon_ship_method=None)
    (line,) = feed_lines(order, [], carrier)
    assert (line.tracking_number, line.carrier_name, line.ship_method) == ("", "", "")


def test_split_parent_and_child_with_items_each_send_their_own_package() -> None:
    parent = make_order(order_no="2001", tracking_number="111122223333")
    child = make_order(order_no="2002", split_from="2001", tracking_number="444455556666")
    parent_items = [item(1, "11111111111111", 1)]
    child_items = [item(1, "22222222222222", 3)]
    assert check_order(
        parent, parent_items, make_carrier(), "utf-8", is_split_parent=True
    ) == Check([], [])
    assert check_order(child, child_items, make_carrier(), "utf-8") == Check([], [])
    lines = feed_lines(parent, parent_items, make_carrier()) + feed_lines(
        child, child_items, make_carrier()
    )
    feed_rows = rows(FeedRenderer().render(lines), "utf-8")
    assert [(r[0], r[1], r[2], r[6]) for r in feed_rows] == [
        ("250-1234567-7654321", "11111111111111", "1", "111122223333"),
        ("250-1234567-7654321", "22222222222222", "3", "444455556666"),
    ]


# ---------------------------------------------------------------------------------------------
# Checking an order


def only_error(check: Check) -> str:
    assert len(check.errors) == 1, check.errors
    return render(check.errors[0], "en")


def test_a_good_order_passes_without_warnings() -> None:
    check = check_order(make_order(), [item(1, "11111111111111", 1)], make_carrier(), "cp932")
    assert check == Check(errors=[], warnings=[])
    assert check.ok


@pytest.mark.parametrize("ship_date", [None, "", "  "])
def test_missing_ship_date(ship_date: str | None) -> None:
    error = only_error(check_order(make_order(ship_date=ship_date), [], make_carrier(), "utf-8"))
    assert error == (
        "発送日 (ship_date) is missing: set it with "
        "`crossship orders update 1001 --ship-date YYYY-MM-DD`"
    )


@pytest.mark.parametrize(
    "ship_date",
    [
        "2024-02-30",
        "2024/05/01",
        "20240501",
        "2024-5-1",
        "２０２４-05-01",
        "2024-W18-3",
    ],
)
def test_invalid_ship_date(ship_date: str) -> None:
    error = only_error(check_order(make_order(ship_date=ship_date), [], make_carrier(), "utf-8"))
    assert "発送日 (ship_date)" in error and "is not a date YYYY-MM-DD" in error
    assert "`crossship orders update 1001 --ship-date YYYY-MM-DD`" in error


def test_missing_carrier() -> None:
    error = only_error(check_order(make_order(carrier=None), [], None, "utf-8"))
    assert error.startswith("配送便 (carrier) is missing")
    assert "`crossship orders update 1001 --carrier NAME`" in error


def test_unknown_carrier() -> None:
    error = only_error(check_order(make_order(carrier="佐川"), [], None, "utf-8"))
    assert "'佐川' is not a registered carrier" in error
    assert "`crossship config carrier add 佐川 --amazon-carrier-code CODE`" in error


@pytest.mark.parametrize("code", [None, "", " "])
def test_carrier_without_amazon_carrier_code(code: str | None) -> None:
    carrier = make_carrier(amazon_carrier_code=code)
    error = only_error(check_order(make_order(), [], carrier, "utf-8"))
    assert "has no Amazon carrier-code" in error
    assert "`crossship config carrier add ヤマト --amazon-carrier-code CODE`" in error


def test_carrier_code_other_needs_a_carrier_name() -> None:
    carrier = make_carrier(amazon_carrier_code="Other", amazon_carrier_name="")
    error = only_error(check_order(make_order(), [], carrier, "utf-8"))
    assert "carrier-code Other but no Amazon carrier-name" in error
    assert "--amazon-carrier-name TEXT" in error
    named = make_carrier(amazon_carrier_code="Other", amazon_carrier_name="西濃運輸")
    assert check_order(make_order(), [], named, "utf-8").ok


@pytest.mark.parametrize("mall_order_id", [None, ""])
def test_missing_mall_order_id(mall_order_id: str | None) -> None:
    order = make_order(mall_order_id=mall_order_id)
    error = only_error(check_order(order, [], make_carrier(), "utf-8"))
    assert error.startswith("注文番号 (mall_order_id) is missing")
    assert "`crossship orders import FILE`" in error


@pytest.mark.parametrize(
    "mall_order_id",
    [
        "250-1234567-765432",
        "2501234567-7654321",
        "250-1234567-7654321\n",
        "２５０-1234567-7654321",
    ],
)
def test_malformed_mall_order_id(mall_order_id: str) -> None:
    order = make_order(mall_order_id=mall_order_id)
    error = only_error(check_order(order, [], make_carrier(), "utf-8"))
    assert "注文番号 (mall_order_id)" in error and "NNN-NNNNNNN-NNNNNNN" in error


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True])
def test_item_quantity_must_be_a_positive_whole_number(quantity: Any) -> None:
    items = [item(1, "11111111111111", quantity)]
    error = only_error(check_order(make_order(), items, make_carrier(), "utf-8"))
    assert "数量 (quantity)" in error and "item line 1" in error
    assert "`crossship orders import FILE`" in error


def test_item_lines_must_all_have_ids_or_none() -> None:
    items = [item(1, "11111111111111"), item(2, None)]
    error = only_error(check_order(make_order(), items, make_carrier(), "utf-8"))
    assert "注文商品番号 (item_id) is missing on item line(s) 2" in error


@pytest.mark.parametrize(
    ("char", "described"),
    [("\t", "a tab"), ("\n", "a line feed (LF)"), ("\r", "a carriage return (CR)")],
)
def test_tab_and_newlines_are_refused_naming_the_field(char: str, described: str) -> None:
    order = make_order(tracking_number=f"1234{char}5678")
    error = only_error(check_order(order, [], make_carrier(), "utf-8"))
    assert error.startswith(f"配送番号 (tracking_number) contains {described}")
    assert "`crossship orders update 1001 --tracking-number NUMBER`" in error


def test_control_characters_in_carrier_values_are_refused() -> None:
    carrier = make_carrier(amazon_ship_method="宅急便\x00")
    error = only_error(check_order(make_order(), [], carrier, "utf-8"))
    assert "Amazon配送方法 (amazon_ship_method) of carrier 'ヤマト'" in error
    assert "U+0000" in error


def test_tab_in_item_id_is_refused() -> None:
    items = [item(3, "1111111\t1111111")]
    error = only_error(check_order(make_order(), items, make_carrier(), "utf-8"))
    assert error.startswith("注文商品番号 (item_id) of item line 3 contains a tab")


def test_unencodable_character_is_refused_for_cp932_only() -> None:
    assert "①".encode("cp932")  # NEC special characters are in cp932: no reason to refuse them
    carrier = make_carrier(amazon_carrier_name="寿司便🍣①")
    error = only_error(check_order(make_order(), [], carrier, "cp932"))
    assert "配送業者名 (amazon_carrier_name) of carrier 'ヤマト'" in error
    assert "'🍣' (U+1F363 SUSHI)" in error and "cp932 cannot hold" in error
    assert error.endswith(
        "change the carrier with `crossship config carrier add ヤマト ...`, or set the store's "
        "encoding with `crossship config store set amazon-main --encoding utf-8`"
    )
    assert check_order(make_order(), [], carrier, "utf-8").ok


def test_unencodable_tracking_number_names_the_field() -> None:
    order = make_order(tracking_number="12345¥")  # the yen sign is not in cp932 (0x5C is "\")
    error = only_error(check_order(order, [], make_carrier(), "cp932"))
    assert error.startswith("配送番号 (tracking_number) contains '¥' (U+00A5 YEN SIGN)")


def test_every_problem_is_reported_at_once() -> None:
    order = make_order(ship_date=None, mall_order_id="x", tracking_number="a\tb")
    check = check_order(order, [item(1, "1", 0)], None, "utf-8")
    assert len(check.errors) == 5
    assert all("`crossship" in render(error, "en") for error in check.errors)


@pytest.mark.parametrize("tracking", [None, "", "  "])
def test_blank_tracking_number_is_a_warning(tracking: str | None) -> None:
    check = check_order(make_order(tracking_number=tracking), [], make_carrier(), "utf-8")
    assert check.ok
    warning = render(check.warnings, "en")
    assert "配送番号 (tracking_number) is blank" in warning and "Valid Tracking Rate" in warning


def test_carrier_without_ship_method_is_sent_without_warning() -> None:
    # Amazon answers with its own ship-method warning (seed Q2); nothing to say beforehand
    check = check_order(make_order(), [], make_carrier(amazon_ship_method=None), "utf-8")
    assert check == Check([], [])


@pytest.mark.parametrize(
    ("changes", "is_split_parent"), [({"split_from": "2001"}, False), ({}, True)]
)
def test_split_order_without_item_lines_is_a_warning(
    changes: dict[str, Any], is_split_parent: bool
) -> None:
    order = make_order(**changes)
    check = check_order(order, [], make_carrier(), "utf-8", is_split_parent=is_split_parent)
    assert check.ok
    warning = render(check.warnings, "en")
    assert len(check.warnings) == 1
    assert "split order (注文分割) without item lines" in warning and "overwrites" in warning
    with_items = check_order(
        order,
        [item(1, "11111111111111")],
        make_carrier(),
        "utf-8",
        is_split_parent=is_split_parent,
    )
    assert with_items.warnings == []


# ---------------------------------------------------------------------------------------------
# Values are data, never template code


@pytest.mark.parametrize(
    "value",
    [
        "{{7*7}}",
        "{% raw %}x{% endraw %}",
        "{{ lines }}",
        "{# c #}",
        "{%- for x in lines %}",
        "<&>'\"",
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_values_are_rendered_literally(value: str, encoding: str) -> None:
    order = make_order(tracking_number=value)
    carrier = make_carrier(amazon_ship_method=value)
    assert check_order(order, [], carrier, encoding).ok
    feed = FeedRenderer(encoding).render(feed_lines(order, [], carrier))
    (row,) = rows(feed, encoding)
    assert row[6] == value and row[7] == value


def test_render_refuses_a_value_it_cannot_encode_naming_the_order() -> None:
    lines = [line_for("1001"), line_for("1002", carrier_name="寿司🍣")]
    with pytest.raises(CrossshipError, match=r"order 1002: carrier_name contains '🍣'"):
        FeedRenderer("cp932").render(lines)
    assert "🍣".encode() in FeedRenderer("utf-8").render(lines)


def test_render_refuses_a_value_that_would_break_rows() -> None:
    lines = [line_for("1001"), line_for("1002", tracking_number="12\n34")]
    with pytest.raises(CrossshipError, match=r"order 1002: tracking_number contains a line feed"):
        FeedRenderer("utf-8").render(lines)


def test_render_accepts_any_iterable() -> None:
    lines = [line_for("1001"), line_for("1002")]
    assert FeedRenderer().render(iter(lines)) == FeedRenderer().render(lines)


# ---------------------------------------------------------------------------------------------
# A store's own template


def test_store_template_override_is_used(tmp_path: Path) -> None:
    template = tmp_path / "store.tsv.j2"
    template.write_text(
        "{# a store's own file #}H\t{{ lines | length }}\n"
        "{% for line in lines %}{{ line.order_id }}\t{{ line.tracking_number }}\n{% endfor %}",
        encoding="utf-8",
    )
    lines = [line_for("1001", tracking_number="{{7*7}}"), line_for("1002")]
    assert FeedRenderer("utf-8", template).render(lines) == (
        b"H\t2\n250-1234567-7654321\t{{7*7}}\n250-1234567-7654321\t123456789012\n"
    )
    # the store template's newlines follow the encoding too
    assert FeedRenderer("cp932", str(template)).render(lines[1:]) == (
        b"H\t1\r\n250-1234567-7654321\t123456789012\r\n"
    )


def test_store_template_with_undefined_variable_fails_loudly(tmp_path: Path) -> None:
    template = tmp_path / "bad.tsv.j2"
    template.write_text("{{ clock }}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'clock' is undefined"):
        FeedRenderer("utf-8", template).render([])


def test_store_template_missing_or_broken_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        FeedRenderer("utf-8", tmp_path / "nothing.j2")
    broken = tmp_path / "broken.j2"
    broken.write_text("{% for line in lines %}", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.j2, line 1"):
        FeedRenderer("utf-8", broken)


# ---------------------------------------------------------------------------------------------
# Splitting above the size limit


def many_orders(count: int) -> list[FeedLine]:
    """Orders with one to three item lines each, in order."""
    lines = []
    for n in range(count):
        for k in range(n % 3 + 1):
            lines.append(line_for(f"{n:05d}", order_item_id=f"{n:07d}{k:07d}", quantity=str(k + 1)))
    return lines


def test_small_feed_is_not_split() -> None:
    lines = many_orders(10)
    renderer = FeedRenderer("cp932")
    assert renderer.split(lines) == [(renderer.render(lines), lines)]
    assert MAX_FEED_BYTES == 10 * 1024 * 1024


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_split_keeps_orders_together_and_every_feed_under_the_limit(
    encoding: str,
) -> None:
    lines = many_orders(200)
    renderer = FeedRenderer(encoding)
    max_bytes = 3000
    feeds = renderer.split(lines, max_bytes=max_bytes)
    assert len(feeds) > 3
    header = expected_header(encoding)
    seen_orders: set[str] = set()
    for data, feed_part in feeds:
        assert data.startswith(header)
        assert len(data) <= max_bytes
        assert data == renderer.render(feed_part)
        orders = {line.order_no for line in feed_part}
        assert not orders & seen_orders  # no order's lines in two feeds
        seen_orders |= orders
    assert [line for _, part in feeds for line in part] == lines  # all, once, in order


def test_split_packs_feeds_full() -> None:
    lines = [line_for(f"{n:05d}") for n in range(100)]
    renderer = FeedRenderer()
    row = len(renderer.render(lines[:1])) - len(renderer.render([]))
    max_bytes = len(renderer.render([])) + 10 * row
    feeds = renderer.split(lines, max_bytes=max_bytes)
    assert [len(part) for _, part in feeds] == [10] * 10


def test_split_groups_an_order_whose_lines_are_apart() -> None:
    lines = [line_for("A"), line_for("B"), line_for("A", order_item_id="2")]
    renderer = FeedRenderer()
    max_bytes = len(renderer.render(lines)) - 1
    feeds = renderer.split(lines, max_bytes=max_bytes)
    assert [[line.order_no for line in part] for _, part in feeds] == [
        ["A", "A"],
        ["B"],
    ]


def test_split_with_a_store_template_that_adds_a_footer(tmp_path: Path) -> None:
    template = tmp_path / "footer.j2"
    template.write_text(
        "HEAD\n{% for line in lines %}{{ line.order_no }}\t{{ line.tracking_number }}\n"
        "{% endfor %}{{ '-' * 40 }}\n",
        encoding="utf-8",
    )
    renderer = FeedRenderer("utf-8", template)
    lines = many_orders(60)
    feeds = renderer.split(lines, max_bytes=400)
    assert len(feeds) > 1
    assert all(len(data) <= 400 and data.startswith(b"HEAD\n") for data, _ in feeds)
    assert [line for _, part in feeds for line in part] == lines


def test_split_refuses_an_order_too_big_for_one_feed() -> None:
    lines = many_orders(3)  # order 00002 has three lines
    renderer = FeedRenderer()
    one_line = len(renderer.render(lines[:1]))
    with pytest.raises(CrossshipError, match="order 00002"):
        renderer.split(lines, max_bytes=one_line + 200)


# ---------------------------------------------------------------------------------------------
# Round trip: what check_order accepts comes back out of the feed unchanged

# cp932 maps these to other code points on the way back (〜 to ～, − to －, ...): not a round trip
CP932_LOSSY = "¢£¬‖−〜"
# what str.isprintable() accepts: no tab, CR, LF, other control, format or separator character
NOT_PRINTABLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")


def printable_text(encoding: str) -> st.SearchStrategy[str]:
    chars = st.characters(
        codec=ENCODINGS[encoding][0],
        exclude_categories=NOT_PRINTABLE,
        include_characters=" ",
        exclude_characters=CP932_LOSSY if encoding == "cp932" else "",
    )
    return st.text(chars, max_size=20)


@st.composite
def order_and_carrier(draw: st.DrawFn, encoding: str) -> tuple[dict, list[dict], dict]:
    text = printable_text(encoding)
    mall_order_id = "-".join(draw(st.text("0123456789", min_size=n, max_size=n)) for n in (3, 7, 7))
    ship_date = draw(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31))).isoformat()
    order = make_order(
        mall_order_id=mall_order_id,
        ship_date=ship_date,
        tracking_number=draw(text),
        split_from=draw(st.none() | st.text("0123456789", min_size=1)),
    )
    carrier = make_carrier(
        amazon_carrier_code=draw(text.filter(str.strip)),
        amazon_carrier_name=draw(text),
        amazon_ship_method=draw(text),
    )
    items = draw(
        st.lists(
            st.builds(
                item,
                line=st.integers(1, 99),
                item_id=text.filter(str.strip),
                quantity=st.none() | st.integers(1, 10_000),
            ),
            max_size=3,
        )
    )
    return order, items, carrier


RENDERERS = {encoding: FeedRenderer(encoding) for encoding in ENCODINGS}


def assert_round_trip(case: tuple[dict, list[dict], dict], encoding: str) -> None:
    order, items, carrier = case
    assume(check_order(order, items, carrier, encoding).ok)
    feed = RENDERERS[encoding].render(feed_lines(order, items, carrier))
    common = [
        order["ship_date"],
        carrier["amazon_carrier_code"],
        carrier["amazon_carrier_name"],
        order["tracking_number"],
        carrier["amazon_ship_method"],
        "",
    ]
    per_item = [(i["item_id"], str(i["quantity"] or 1)) for i in items] or [("", "")]
    assert rows(feed, encoding) == [[order["mall_order_id"], *ids, *common] for ids in per_item]


@settings(max_examples=150, deadline=None)
@given(order_and_carrier("utf-8"))
def test_accepted_values_come_back_unchanged_utf8(case: tuple[dict, list[dict], dict]) -> None:
    assert_round_trip(case, "utf-8")


@settings(max_examples=150, deadline=None)
@given(order_and_carrier("cp932"))
def test_accepted_values_come_back_unchanged_cp932(case: tuple[dict, list[dict], dict]) -> None:
    assert_round_trip(case, "cp932")


def test_a_store_template_edited_between_runs_is_compiled_again(tmp_path: Path) -> None:
    """Templates are compiled once for the many stores of a run, never past a change."""
    template = tmp_path / "store.tsv.j2"
    template.write_text("first {{ lines | length }}\n", encoding="utf-8")
    assert FeedRenderer("utf-8", template).render([]) == b"first 0\n"
    assert FeedRenderer("utf-8", template).template is FeedRenderer("utf-8", template).template
    template.write_text("second {{ lines | length }}\n", encoding="utf-8")
    assert FeedRenderer("utf-8", template).render([]) == b"second 0\n"
    assert FeedRenderer("cp932", template).render([]) == b"second 0\r\n"
