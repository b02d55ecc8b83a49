"""A plan's collection terms (collection_method, days_until_due, auto_advance): validated with
an error naming the field, defaulting to today's behaviour, a change is a new version."""

import copy

import pytest
import yaml

from billing.catalog import DEFAULT_CATALOG, CatalogError, parse_catalog
from billing.catalog_diff import plan_changes
from billing.collection import Collection


@pytest.fixture
def raw_catalog() -> dict:
    return yaml.safe_load(DEFAULT_CATALOG.read_text())


def test_a_plan_without_terms_is_sent_due_in_30_days_and_not_advanced(raw_catalog):
    plan = parse_catalog(raw_catalog).plans["pro"]
    assert plan.collection == Collection("send_invoice", 30, False)
    assert plan.collection.invoice_params() == {
        "collection_method": "send_invoice",
        "auto_advance": False,
        "days_until_due": 30,
    }


def test_charge_automatically_has_no_due_days(raw_catalog):
    raw_catalog["plans"]["pro"].update(collection_method="charge_automatically", auto_advance=True)
    plan = parse_catalog(raw_catalog).plans["pro"]
    assert plan.collection == Collection("charge_automatically", None, True)
    assert plan.collection.invoice_params() == {
        "collection_method": "charge_automatically",
        "auto_advance": True,
    }


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"days_until_due": 0}, "plans.pro.days_until_due must be a whole number of days from 1 to 365, got 0"),
        ({"days_until_due": 366}, "plans.pro.days_until_due must be a whole number of days from 1 to 365, got 366"),
        ({"days_until_due": "14"}, "plans.pro.days_until_due must be a whole number of days"),
        ({"days_until_due": True}, "plans.pro.days_until_due must be a whole number of days"),
        ({"collection_method": "charge_automatically", "days_until_due": 14},
         "plans.pro.days_until_due is only allowed with collection_method: send_invoice"),
        ({"collection_method": "cash"}, "plans.pro.collection_method must be one of send_invoice, charge_automatically, got 'cash'"),
        ({"auto_advance": "yes"}, "plans.pro.auto_advance must be true or false, got 'yes'"),
    ],
)  # fmt: skip
def test_bad_terms_are_refused_naming_the_field(raw_catalog, terms, message):
    raw_catalog["plans"]["pro"].update(terms)
    with pytest.raises(CatalogError) as refused:
        parse_catalog(raw_catalog)
    assert message in str(refused.value)


def test_days_at_the_bounds_are_accepted(raw_catalog):
    for days in (1, 365):
        raw_catalog["plans"]["pro"]["days_until_due"] = days
        assert parse_catalog(raw_catalog).plans["pro"].collection.days_until_due == days


def test_a_change_of_terms_is_a_change_of_the_plan(raw_catalog):
    before = parse_catalog(raw_catalog).plans["pro"]
    changed = copy.deepcopy(raw_catalog)
    changed["plans"]["pro"].update(days_until_due=14, auto_advance=True)
    after = parse_catalog(changed).plans["pro"]
    assert [str(c) for c in plan_changes(before, after)] == [
        "pro: days_until_due 30 -> 14",
        "pro: auto_advance false -> true",
    ]
