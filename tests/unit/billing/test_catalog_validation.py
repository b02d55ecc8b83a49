import copy
from decimal import Decimal

import pytest
import yaml

from billing.catalog import DEFAULT_CATALOG, CatalogError, load_catalog, parse_catalog


@pytest.fixture
def raw_catalog() -> dict:
    return yaml.safe_load(DEFAULT_CATALOG.read_text())


def test_default_catalog_has_the_design_plans_and_limits():
    catalog = load_catalog()
    assert set(catalog.plans) == {"payg", "free", "starter", "pro", "enterprise"}
    assert catalog.plans["starter"].base_fee == Decimal("29")
    assert catalog.plans["free"].meters["storage_gb"].limit == Decimal("0.1")
    assert catalog.plans["free"].meters["api_calls"].hard_limit is True
    pro_calls = catalog.plans["pro"].meters["api_calls"]
    assert (pro_calls.limit, pro_calls.hard_limit, pro_calls.included) == (
        Decimal(500000),
        False,
        Decimal(500000),
    )
    assert catalog.meters["active_users"].unique_dimension == "user_id"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["plans"]["payg"]["meters"]["api_calls"]["tiers"][2].update(up_to=100000),
            "plans.payg.meters.api_calls.tiers[2].up_to must be greater than 100000",
        ),
        (
            lambda d: d["plans"]["pro"]["meters"]["api_calls"].update(pricing="banana"),
            "plans.pro.meters.api_calls.pricing must be one of",
        ),
        (lambda d: d["plans"]["pro"].update(base_fee="-1"), "plans.pro.base_fee must be >= 0"),
        (
            lambda d: d["plans"]["pro"]["meters"].update(cpu={"pricing": "none"}),
            "plans.pro.meters.cpu refers to unknown meter 'cpu'",
        ),
        (
            lambda d: d["meters"]["api_calls"].update(aggregation="avg"),
            "meters.api_calls.aggregation must be one of",
        ),
        (
            lambda d: d["plans"]["free"].update(upgrade_to="gold"),
            "plans.free.upgrade_to refers to unknown plan 'gold'",
        ),
        (
            lambda d: d["plans"]["payg"]["meters"]["api_calls"]["tiers"][3].update(up_to=2000000),
            "tiers[3].up_to must be null",
        ),
        (
            lambda d: d["plans"]["payg"].update(currency="XYZ"),
            "plans.payg.currency must be an ISO 4217 code",
        ),
        (lambda d: d["plans"]["pro"].update(colour="red"), "plans.pro.colour is not a known field"),
    ],
)
def test_catalog_mistakes_name_their_path(raw_catalog, mutate, message):
    data = copy.deepcopy(raw_catalog)
    mutate(data)
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(data)
    assert message in str(excinfo.value)


def test_missing_catalog_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog file"):
        load_catalog(tmp_path / "nope.yaml")
