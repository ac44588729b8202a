"""Cost estimates: the price table names models as we ask for them, the API answers with dated snapshots."""

from __future__ import annotations

from decimal import Decimal

from app.llm.generate import cost_of, model_family, price_of


def test_it_strips_a_snapshot_date_to_find_the_family():
    assert model_family("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert model_family("gpt-3.5-turbo-0125") == "gpt-3.5-turbo"
    assert model_family("gpt-4.1") == "gpt-4.1"
    assert model_family("mock-1") == "mock-1"


def test_it_prices_by_the_requested_model_whatever_snapshot_answered():
    assert price_of("gpt-4o-mini", "gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert cost_of("gpt-4o-mini", 1200, 300, "gpt-4o-mini-2024-07-18") == Decimal("0.00036")


def test_it_prices_a_requested_snapshot_by_its_family():
    assert price_of("gpt-4o-2024-08-06") == (2.50, 10.00)


def test_it_falls_back_to_the_answering_model_for_a_name_the_table_lacks():
    assert price_of("our-proxy-alias", "gpt-4.1-mini-2025-04-14") == (0.40, 1.60)
    assert price_of("our-proxy-alias", "someone-elses-model") == (0.0, 0.0)
