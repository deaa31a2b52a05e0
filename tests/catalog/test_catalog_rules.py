"""Providers see the rules their real data obeys on the confirm page, dismiss them with a reason or declare
their own; the choices reach the certificate (web and API)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from marketplace.catalog import services
from marketplace.catalog.models import ProductVersion
from marketplace.catalog.uploads import local_upload
from marketplace.certification.plausibility import reference_rules

pytestmark = pytest.mark.django_db

HUSBAND = "implication:relationship=Husband=>sex=Male"
EDUCATION = "one_to_one:education<->education-num"
COLUMNS = ["age", "education", "education-num", "relationship", "sex", "hours-per-week", "class"]


@pytest.fixture
def rules_version(provider, product_factory, adult_frame: pd.DataFrame, tmp_path: Path) -> ProductVersion:
    frame = adult_frame[COLUMNS]
    tables = {
        "synthetic": frame.iloc[2400:].reset_index(drop=True),
        "train": frame.iloc[:2000].reset_index(drop=True),
        "holdout": frame.iloc[2000:2400].reset_index(drop=True),
    }
    paths = {}
    for role, table in tables.items():
        paths[role] = tmp_path / f"{role}.csv"
        paths[role].write_bytes(csv_bytes(table))
    return services.create_version(
        product_factory(provider, "Household survey"),
        user=provider,
        synthetic=[local_upload(paths["synthetic"], name="people.csv")],
        train=local_upload(paths["train"]),
        holdout=local_upload(paths["holdout"]),
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _confirm_url(version: ProductVersion) -> str:
    return f"/products/{version.product.slug}/versions/{version.number}/confirm/"


def test_confirm_page_lists_the_discovered_rules(client, provider, rules_version):
    client.force_login(provider)

    page = client.get(_confirm_url(rules_version)).content.decode()

    assert "when relationship is Husband, sex is Male" in page
    assert "education and education-num determine each other (one-to-one)" in page
    assert f'name="dismiss" value="{HUSBAND.replace(">", "&gt;")}"' in page


def test_dismissing_needs_a_reason_and_nothing_is_submitted_without_one(client, provider, rules_version):
    client.force_login(provider)

    response = client.post(_confirm_url(rules_version), {"target": "", "dismiss": [HUSBAND], "submit": "1"})

    assert response.status_code == 400
    assert "written in the certificate" in response.content.decode()
    rules_version.refresh_from_db()
    assert rules_version.status == "draft" and rules_version.rules == {}


def test_an_unreadable_declared_rule_is_refused_on_the_page(client, provider, rules_version):
    client.force_login(provider)

    response = client.post(
        _confirm_url(rules_version), {"target": "", "declared": "age is old", "submit": "1"}
    )

    assert response.status_code == 400
    assert "cannot be read" in response.content.decode()
    rules_version.refresh_from_db()
    assert rules_version.status == "draft"


def test_dismissed_and_declared_rules_are_stored_and_reach_the_engine(client, provider, rules_version):
    client.force_login(provider)
    reason = "Our survey records sex independently of relationship."

    response = client.post(
        _confirm_url(rules_version),
        {
            "target": "",
            "dismiss": [HUSBAND],
            f"reason__{HUSBAND}": reason,
            "declared": "hours-per-week <= age\n",
            "submit": "1",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    rules_version.refresh_from_db()
    assert rules_version.status == "submitted"
    assert rules_version.rules == {
        "dismissed": [{"id": HUSBAND, "reason": reason}],
        "declared": ["hours-per-week <= age"],
    }
    rules = {rule["id"]: rule for rule in reference_rules(rules_version, rules_version.rules["declared"])}
    assert rules["declared:hours-per-week <= age"]["source"] == "declared"


def test_api_takes_the_same_choices_and_refuses_an_unknown_rule(api_client_for, provider, rules_version):
    client = api_client_for(provider)
    url = f"/api/v1/products/{rules_version.product.slug}/versions/{rules_version.number}/"

    listed = client.get(url + "rules/")
    refused = client.post(
        url + "submit/", {"rules": {"dismissed": [{"id": "order:a<=b", "reason": "no"}]}}, format="json"
    )
    accepted = client.post(
        url + "submit/",
        {"rules": {"dismissed": [{"id": EDUCATION, "reason": "Two codings of one answer."}], "declared": []}},
        format="json",
    )

    assert listed.status_code == 200
    assert {HUSBAND, EDUCATION} <= {rule["id"] for rule in listed.json()["rules"]}
    assert listed.json()["choices"] == {}
    assert refused.status_code == 400 and "No rule of this version" in refused.json()["detail"]
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["rules"]["dismissed"] == [
        {"id": EDUCATION, "reason": "Two codings of one answer."}
    ]
