"""The certificate page's charts (issue 17 #8): matplotlib SVG drawn in the worker with axes, ticks, labels
and legends, column names escaped, and the web process only reading stored markup."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from marketplace.certification.engine.evaluate import evaluate
from marketplace.certification.models import CertificateCharts
from marketplace.certification.services import issue_certificate

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"


def _certify(version: Any, small_tables: dict[str, Any], capture: Any) -> Any:
    tables = {role: frame.rename(columns={"workclass": HOSTILE}) for role, frame in small_tables.items()}
    evaluation = evaluate(tables["synthetic"], tables["train"], tables["holdout"]).to_dict()
    with capture(execute=True):
        return issue_certificate(version, evaluation, list(version.files.filter(role="synthetic")))


def test_certificate_page_shows_labelled_svg_charts_with_column_names_escaped(
    provider, product_factory, version_factory, small_tables, client, django_capture_on_commit_callbacks
):
    version = version_factory(product_factory(provider, "Charted"), provider)
    certificate = _certify(version, small_tables, django_capture_on_commit_callbacks)
    client.force_login(provider)

    page = client.get(reverse("certification:detail", args=[certificate.id])).content.decode()

    charts = page[page.index("<h2>Charts</h2>") : page.index("</main>")]
    # age, workclass, education, hours-per-week, sex, class; two correlation maps; the distance chart.
    assert len(re.findall(r"<svg[^>]*class=\"mpl-chart\"", charts)) == 6 + 2 + 1
    for text in (
        "share of rows",  # y axis of every marginal
        "age (outer bins open-ended)",  # x axis of a histogram
        "hours-per-week (outer bins open-ended)",
        "Bachelors",  # a category tick, whole
        "real",
        "synthetic",  # legend
        "Pearson r",  # colour bar
        "distance to closest record",
        "share of synthetic rows",
        "synthetic → train",
        "synthetic → holdout",
    ):
        assert text in charts, text
    assert re.search(r">\s*20\s*</text>", charts)  # a numeric tick on the age axis
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in charts
    # Inline SVG within the CSP: no style elements, no script, ids unique across the page's charts.
    assert "<style" not in charts and "<script" not in charts
    ids = re.findall(r'\sid="([^"]+)"', charts)
    assert len(ids) == len(set(ids))


def test_a_certificate_without_drawn_charts_says_so_and_queues_the_drawing(
    provider, product_factory, version_factory, small_tables, client, django_capture_on_commit_callbacks
):
    version = version_factory(product_factory(provider, "Undrawn"), provider)
    certificate = _certify(version, small_tables, django_capture_on_commit_callbacks)
    CertificateCharts.objects.filter(certificate=certificate).delete()
    client.force_login(provider)
    url = reverse("certification:detail", args=[certificate.id])

    page = client.get(url).content.decode()

    assert "The charts are being drawn" in page
    assert "mpl-chart" not in page
    # Celery runs eagerly in tests: the queued drawing has stored the charts for the next visit.
    assert CertificateCharts.objects.filter(certificate=certificate).exists()
    assert "mpl-chart" in client.get(url).content.decode()
