"""``synthex rules`` lists what certification will check on a draft's real rows; ``synthex submit --rules``
dismisses a rule with a reason and declares another."""

from __future__ import annotations

import json

import pytest

from marketplace.catalog.models import ProductVersion

pytestmark = pytest.mark.django_db(transaction=True)

HUSBAND = "implication:relationship=Husband=>sex=Male"
COLUMNS = ["age", "education", "education-num", "relationship", "sex", "hours-per-week"]


def test_rules_are_listed_then_dismissed_and_declared_on_submit(
    cli, provider, token_for, product_factory, adult_frame, tmp_path
):
    product = product_factory(provider, "Households")
    frame = adult_frame[COLUMNS]
    paths = {role: tmp_path / f"{role}.csv" for role in ("synthetic", "train", "holdout")}
    frame.iloc[2400:].to_csv(paths["synthetic"], index=False)
    frame.iloc[:2000].to_csv(paths["train"], index=False)
    frame.iloc[2000:2400].to_csv(paths["holdout"], index=False)
    token = token_for(provider)
    uploaded = cli(
        "upload", product.slug, paths["synthetic"], "--train", paths["train"], "--holdout", paths["holdout"],
        "--no-submit", "--json", token=token,
    )  # fmt: skip
    assert uploaded.code == 0, uploaded.err

    listed = cli("rules", product.slug, "1", "--json", token=token)
    human = cli("rules", product.slug, "1", token=token)
    choices = tmp_path / "rules.json"
    choices.write_text(
        json.dumps(
            {
                "dismissed": [{"id": HUSBAND, "reason": "Recorded apart."}],
                "declared": ["hours-per-week <= age"],
            }
        )
    )
    submitted = cli("submit", product.slug, "1", "--rules", f"@{choices}", "--json", token=token)

    assert listed.code == 0, listed.err
    assert HUSBAND in {rule["id"] for rule in listed.json()["rules"]}
    assert "when relationship is Husband, sex is Male — broken in 0% of real rows" in human.out
    assert submitted.code == 0, submitted.err
    version = ProductVersion.objects.get(product=product, number=1)
    assert version.rules == {
        "dismissed": [{"id": HUSBAND, "reason": "Recorded apart."}],
        "declared": ["hours-per-week <= age"],
    }
    assert version.status in ("submitted", "certifying", "certified")
