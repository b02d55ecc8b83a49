"""Stripe's value limits on the parameters Meterline sends: metadata, currency, text lengths.

- ``metadata``: at most 50 keys, keys up to 40 characters, values up to 500 characters
  (docs.stripe.com/metadata), every value a string;
- ``currency``: a lowercase three-letter ISO code Stripe supports (``Invalid currency: xyz``,
  code ``invalid_currency``, as Stripe answers);
- text: ``description`` (invoice 1500, invoice item and customer 5000 characters), customer
  ``name`` 256 and ``email`` 512 (Stripe's API reference).

Checked before a call executes, so a refused request changes nothing and leaves its
idempotency key unused.
"""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.params import ParamError

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
# The currencies Stripe lists in its "Invalid currency" error (docs.stripe.com/currencies).
_CURRENCY_CODES = """usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd
    bwp byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel
    gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd
    kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok
    npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos
    srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer
    zar zmw"""
CURRENCIES = frozenset(_CURRENCY_CODES.split())
# (params class prefix, parameter) -> longest value Stripe accepts
TEXT_MAX = {
    ("Invoice", "description"): 1500,
    ("Invoice", "footer"): 5000,
    ("InvoiceItem", "description"): 5000,
    ("Customer", "description"): 5000,
    ("Customer", "name"): 256,
    ("Customer", "email"): 512,
}


def check_limits(params: dict[str, Any], params_class: str) -> None:
    if isinstance(params.get("metadata"), dict):
        check_metadata(params["metadata"])
    if "currency" in params:
        check_currency(params["currency"])
    resource = _resource(params_class)
    for (kind, name), longest in TEXT_MAX.items():
        value = params.get(name)
        if kind == resource and isinstance(value, str) and len(value) > longest:
            raise ParamError(
                f"Invalid string: {name} is {len(value)} characters long; Stripe accepts at "
                f"most {longest} characters (shorten {name}).",
                name,
            )


def _resource(params_class: str) -> str:
    for kind in ("InvoiceItem", "Invoice", "Customer"):  # longest prefix first
        if params_class.startswith(kind):
            return kind
    return ""


def check_metadata(metadata: dict[str, Any]) -> None:
    if len(metadata) > METADATA_MAX_KEYS:
        raise ParamError(
            f"Invalid metadata: metadata can have up to {METADATA_MAX_KEYS} keys, but "
            f"{len(metadata)} were sent (remove {len(metadata) - METADATA_MAX_KEYS}).",
            "metadata",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_MAX:
            raise ParamError(
                f"Metadata keys can have up to {METADATA_KEY_MAX} characters, but you passed "
                f"in a key that is {len(key)} characters: {key[:60]!r}",
                f"metadata[{key}]",
            )
        if isinstance(value, str) and len(value) > METADATA_VALUE_MAX:
            raise ParamError(
                f"Metadata values can have up to {METADATA_VALUE_MAX} characters, but you "
                f"passed in a value that is {len(value)} characters (metadata[{key}]).",
                f"metadata[{key}]",
            )


def check_currency(currency: Any) -> None:
    if not isinstance(currency, str) or currency.lower() not in CURRENCIES:
        raise ParamError(
            f"Invalid currency: {str(currency)[:20]}. Stripe supports these currencies: "
            f"{', '.join(sorted(CURRENCIES))}",
            "currency",
            "invalid_currency",
        )
