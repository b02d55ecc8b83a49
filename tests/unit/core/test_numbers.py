"""One rule each for quantities as text and as JSON numbers (invoices, alerts, API, portal)."""

from decimal import Decimal

from meterline.core.numbers import format_quantity, json_number


def test_quantity_text_has_separators_and_no_trailing_zeros():
    # alerts' messages (these two asserts were alerts' test_fmt_quantity)
    assert format_quantity(Decimal("1000.000000")) == "1,000"
    assert format_quantity(Decimal("0.100000")) == "0.1"
    # invoices, Stripe metadata and the API's 402 message
    assert format_quantity(Decimal(1_234_567)) == "1,234,567"
    assert format_quantity(Decimal("150.500")) == "150.5"
    assert format_quantity(Decimal("1E+3")) == "1,000"
    assert format_quantity(Decimal("1234567.125")) == "1,234,567.125"
    assert format_quantity(None) == ""


def test_json_number_is_int_when_whole_else_float():
    assert json_number(Decimal("1000.000000")) == 1000
    assert isinstance(json_number(Decimal("1000.000000")), int)
    assert json_number(Decimal("0.500000")) == 0.5
    assert json_number(None) is None
    assert json_number("text") == "text"
