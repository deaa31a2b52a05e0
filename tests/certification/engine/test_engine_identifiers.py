"""Columns the statistical tests leave out (ids, names, e-mails, declared pii) are still checked for copied
real values; a synthetic column the reference rows lack is refused."""

from __future__ import annotations

import adversarial as adv
import numpy as np
import pandas as pd
import pytest

from marketplace.certification.engine import EngineConfig, EngineError, evaluate

CONFIG = EngineConfig(attack_count=200, fidelity_max_rows=2_000, discriminator_max_rows=1_000)
FIRST = ["ana", "ben", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jan", "kim", "liam"]
LAST = ["adams", "baker", "costa", "dubois", "evans", "fischer", "garcia", "horvat", "ito", "jansen"]


def _emails(rows: int, seed: int) -> list[str]:
    """Unique e-mail addresses (a number makes each unique, as in a real customer table)."""
    rng = np.random.default_rng(seed)
    numbers = rng.choice(10_000_000, size=rows, replace=False)
    return [
        f"{FIRST[rng.integers(len(FIRST))]}.{LAST[rng.integers(len(LAST))]}{n}@example.org" for n in numbers
    ]


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    table = adv.adult(3_000)
    train, holdout = adv.split(table)
    honest = adv.gaussian_copula(train, 1_000)
    train = train.assign(email=_emails(len(train), 1), customer_id=np.arange(1, len(train) + 1))
    holdout = holdout.assign(email=_emails(len(holdout), 2), customer_id=np.arange(1, len(holdout) + 1))
    honest = honest.assign(email=_emails(len(honest), 3), customer_id=np.arange(1, len(honest) + 1))
    return train, holdout, honest


def _test(result, test_id: str) -> dict:
    return next(t for t in result.privacy["tests"] if t["id"] == test_id)


def test_fresh_identifiers_and_row_numbers_pass(tables) -> None:
    train, holdout, honest = tables
    result = evaluate(honest, train, holdout, config=CONFIG)
    test = _test(result, "identifier_copies/v1")

    assert test["passed"] is True
    assert test["columns_tested"] == ["email"]
    assert result.privacy["identifier_copies"]["columns"]["email"]["synthetic_in_train"] == 0


def test_real_emails_copied_into_an_identifier_column_fail(tables) -> None:
    train, holdout, honest = tables
    leaked = honest.copy()
    leaked.loc[: len(leaked) // 10, "email"] = (
        train["email"].sample(len(leaked) // 10 + 1, random_state=0).values
    )
    result = evaluate(leaked, train, holdout, config=CONFIG)
    test = _test(result, "identifier_copies/v1")

    assert test["passed"] is False
    assert test["failing_columns"] == ["email"]
    assert result.privacy_passed is False
    assert result.privacy_grade == "F"
    assert "@example.org" not in str(result.privacy)


def test_real_account_numbers_in_a_unique_id_column_fail(tables) -> None:
    train, holdout, honest = tables
    rng = np.random.default_rng(5)
    accounts = rng.choice(10**9, size=len(train) + len(holdout), replace=False)
    train = train.assign(account=accounts[: len(train)])
    holdout = holdout.assign(account=accounts[len(train) :])
    leaked = honest.assign(account=rng.choice(accounts[: len(train)], size=len(honest), replace=False))
    result = evaluate(leaked, train, holdout, metadata=None, config=CONFIG)

    assert "account" in _test(result, "identifier_copies/v1")["failing_columns"]
    assert result.privacy_passed is False


def test_a_sensitive_column_declared_pii_is_still_checked(tables) -> None:
    train, holdout, honest = tables
    metadata = {"columns": {"fnlwgt": {"sdtype": "pii"}}}
    leaked = honest.copy()
    leaked["fnlwgt"] = train["fnlwgt"].sample(len(leaked), random_state=1).values
    fresh = evaluate(honest, train, holdout, metadata=metadata, config=CONFIG)
    result = evaluate(leaked, train, holdout, metadata=metadata, config=CONFIG)

    assert _test(fresh, "identifier_copies/v1")["passed"] is True
    assert "fnlwgt" in _test(result, "identifier_copies/v1")["failing_columns"]
    assert result.privacy_passed is False


def test_a_synthetic_column_the_reference_lacks_is_refused(tables) -> None:
    train, holdout, honest = tables
    smuggled = honest.assign(note=train["email"].iloc[: len(honest)].values)

    with pytest.raises(EngineError, match="columns the train table lacks: note"):
        evaluate(smuggled, train, holdout, config=CONFIG)


def test_whole_number_keys_declared_in_the_metadata_are_structure_not_identifiers(tables) -> None:
    """Related tables' keys (declared sdtype id) are renumbered by generators and may reuse real numbers."""
    train, holdout, honest = tables
    rng = np.random.default_rng(8)
    numbers = rng.choice(10**6, size=len(train) + len(holdout), replace=False)
    train = train.assign(household=numbers[: len(train)])
    holdout = holdout.assign(household=numbers[len(train) :])
    renumbered = honest.assign(household=rng.choice(numbers[: len(train)], size=len(honest), replace=False))
    metadata = {"columns": {"household": {"sdtype": "id"}}}
    declared = evaluate(renumbered, train, holdout, metadata=metadata, config=CONFIG)
    undeclared = evaluate(renumbered, train, holdout, config=CONFIG)

    assert _test(declared, "identifier_copies/v1")["passed"] is True
    assert "household" not in _test(declared, "identifier_copies/v1")["columns_tested"]
    assert "household" in _test(undeclared, "identifier_copies/v1")["failing_columns"]
