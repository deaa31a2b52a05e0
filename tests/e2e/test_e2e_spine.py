from __future__ import annotations

import re

import pytest

from marketplace.catalog.models import ProductVersion, Upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_sign_up_create_product_upload_confirm_find_and_preview(
    live_server, page, screenshot, small_tables, tmp_path
):
    base = live_server.url
    page.goto(f"{base}/")
    screenshot("01-catalog-empty")
    page.get_by_role("link", name="Sign up").click()
    page.fill("#id_username", "marie")
    page.fill("#id_email", "marie@example.test")
    page.fill("#id_password1", "radium-and-polonium")
    page.fill("#id_password2", "radium-and-polonium")
    page.fill("#id_provider_name", "Curie Data")
    screenshot("02-signup")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r".*/accounts/profile/"))
    screenshot("03-profile")

    page.get_by_role("link", name="Sell data").click()
    page.fill("#id_title", "Radiation exposure survey")
    page.fill("#id_summary", "Synthetic dosimetry records for lab safety research")
    page.fill("#id_description_md", "Columns include **hours per week**.")
    page.select_option("#id_domain", "science")
    page.fill("#id_tags", "physics, safety")
    page.fill("#id_price_standard", "12.50")
    screenshot("04-product-form")
    page.get_by_role("button", name="Create product").click()
    page.wait_for_url(re.compile(r".*/versions/new/"))

    csv_path = tmp_path / "dosimetry.csv"
    small_tables["synthetic"].to_csv(csv_path, index=False)
    train_path = tmp_path / "train.csv"
    small_tables["train"].to_csv(train_path, index=False)
    page.set_input_files("#id_synthetic", str(csv_path))
    page.set_input_files("#id_train", str(train_path))
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r".*/confirm/"))
    assert page.locator("#upload-progress-bar").count() == 0  # we left the upload page after reaching 100%
    screenshot("05-confirm-schema")
    assert page.locator("select[name='sdtype__workclass']").input_value() == "categorical"
    page.select_option("select[name='sdtype__age']", "categorical")
    page.check("input[name='target'][value='class']")
    page.get_by_role("button", name="Confirm and submit for certification").click()
    page.wait_for_url(re.compile(r".*/products/radiation-exposure-survey/\?version=1"))
    version = ProductVersion.objects.get(product__slug="radiation-exposure-survey")
    assert version.status in {"submitted", "certifying", "certified", "failed"}
    assert version.sdv_metadata["columns"]["age"]["sdtype"] == "categorical"

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/")
    page.fill("input[name=q]", "dosimetry")
    page.get_by_role("button", name="Search").click()
    screenshot("06-search-results")
    assert page.locator("#result-count").inner_text() == "1 product"
    page.get_by_role("link", name="Radiation exposure survey").click()
    page.wait_for_selector("table.preview")
    screenshot("07-product-page")
    assert page.locator("table.preview tbody tr").count() == 20
    assert page.locator("table.schema tbody tr").count() == len(small_tables["synthetic"].columns)
    assert "train.csv" not in page.content()


def log_in_as_provider(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "provider")
    page.fill("#id_password", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()


def test_upload_progress_bar_reports_bytes_sent(live_server, page, provider, product_factory, tmp_path):
    product = product_factory(provider, "Progress product")
    log_in_as_provider(page, live_server.url)
    page.goto(f"{live_server.url}/products/{product.slug}/versions/new/")
    big = tmp_path / "wide.csv"
    with big.open("w") as handle:
        handle.write("a,b,c\n")
        for i in range(300_000):
            handle.write(f"{i},{i * 2},x{i % 97}\n")
    widths: list[str] = []
    page.on("console", lambda message: widths.append(message.text) if message.text.endswith("%") else None)
    page.evaluate(
        """() => { const bar = document.getElementById('upload-progress-bar');
        new MutationObserver(() => console.log(bar.style.width)).observe(bar, {attributes: true}); }"""
    )
    page.set_input_files("#id_synthetic", str(big))
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url(re.compile(r".*/confirm/"), timeout=60_000)
    assert ProductVersion.objects.get(product=product).files.get().rows == 300_000
    assert widths[-1] == "100%"
    assert all(0 <= int(w.rstrip("%")) <= 100 for w in widths)


def test_a_refused_file_is_explained_in_the_page_and_leaves_nothing(
    live_server, page, provider, product_factory, tmp_path
):
    product = product_factory(provider, "Refusing product")
    log_in_as_provider(page, live_server.url)
    page.goto(f"{live_server.url}/products/{product.slug}/versions/new/")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n" + "1,2\n" * 500 + "3\n")
    page.set_input_files("#id_synthetic", str(ragged))
    page.get_by_role("button", name="Upload and check").click()
    error = page.locator("#upload-error")
    error.wait_for(state="visible", timeout=30_000)
    assert error.inner_text().startswith("ragged.csv: ")
    assert ProductVersion.objects.filter(product=product).count() == 0
    # The upload session the page opened is deleted again.
    for _ in range(50):
        if not Upload.objects.exists():
            break
        page.wait_for_timeout(100)
    assert not Upload.objects.exists()
    assert page.get_by_role("button", name="Upload and check").is_enabled()
