"""export_transactions and export_every_minutes: what `company set` accepts and stores."""

from __future__ import annotations

import pytest

from qbwc_bridge.domain.company import CompanySettings, InvalidSetting


def test_the_export_is_off_until_transactions_are_named() -> None:
    settings = CompanySettings()
    assert settings.export_transactions == "" and settings.export_types == ()
    assert settings.export_every_minutes == 60


def test_a_comma_list_is_stored_in_one_spelling() -> None:
    settings = CompanySettings().with_value(
        "export_transactions", " Credit_Memo, invoice,,invoice , sales_receipt "
    )
    assert settings.export_transactions == "invoice,sales_receipt,credit_memo"
    assert settings.export_types == ("invoice", "sales_receipt", "credit_memo")
    assert CompanySettings.from_dict(settings.as_dict()) == settings
    assert settings.with_value("export_transactions", "").export_types == ()


def test_unknown_types_and_intervals_are_refused() -> None:
    with pytest.raises(InvalidSetting, match="export_transactions lists 'estimate'"):
        CompanySettings().with_value("export_transactions", "invoice,estimate")
    with pytest.raises(InvalidSetting, match="export_every_minutes must be at least 1"):
        CompanySettings().with_value("export_every_minutes", "0")
    with pytest.raises(InvalidSetting, match="whole number"):
        CompanySettings().with_value("export_every_minutes", "hourly")
    with pytest.raises(InvalidSetting, match="export_transactions lists 'payments'"):
        CompanySettings(export_transactions="payments").validate()
