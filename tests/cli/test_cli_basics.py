"""Login, catalog commands, help, and the exit status and message of each kind of failure."""

from __future__ import annotations

import json
import os
import stat

import pytest
from cli_support import CLIENT, cli_process

pytestmark = pytest.mark.django_db(transaction=True)

COMMANDS = [
    [],
    ["login"],
    ["logout"],
    ["products", "list"],
    ["products", "search"],
    ["products", "show"],
    ["product", "create"],
    ["upload"],
    ["jobs", "watch"],
    ["certificate", "get"],
    ["certificate", "verify"],
    ["buy"],
    ["entitlements"],
    ["receipt", "get"],
    ["receipt", "verify"],
    ["download"],
    ["sample"],
    ["ledger", "head"],
    ["ledger", "verify"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "synthex")
def test_every_command_has_help(command, capsys):
    from synthex_client.cli import main

    assert main([*command, "--help"]) == 0
    assert "usage: synthex" in capsys.readouterr().out


def test_usage_errors_exit_2(cli):
    assert cli("upload").code == 2
    assert cli("products", "bogus").code == 2
    missing = cli("upload", "some-product", "/nonexistent.csv", token="t")
    assert (missing.code, missing.err.strip()) == (2, "error: /nonexistent.csv: no such file.")


def test_login_saves_the_token_private_and_refuses_a_bad_one(cli, server, provider, token_for, tmp_path):
    path = tmp_path / "synthex" / "config.json"
    refused = cli("login", "--token", "not-a-token")
    assert refused.code == 3
    assert "Invalid token. (HTTP 401, code authentication_failed)" in refused.err
    assert not path.exists()
    token = token_for(provider)
    done = cli("login", "--token", token, "--json")
    assert done.code == 0, done.err
    assert done.json() == {"url": server, "config": str(path)}
    assert json.loads(path.read_text()) == {"url": server, "token": token}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # The saved login is used without SYNTHEX_TOKEN; logout forgets it.
    assert cli("entitlements", "--json").json() == []
    assert cli("logout").code == 0
    assert json.loads(path.read_text()) == {"url": server}
    assert cli("entitlements").code == 2


def test_login_without_a_terminal_needs_the_token_given(server, tmp_path):
    process = cli_process(
        ["login"],
        {"SYNTHEX_CONFIG": str(tmp_path / "c.json")},
        stdin=open(os.devnull),  # noqa: SIM115
        stderr=-1,
        stdout=-1,
    )
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert b"--token-stdin" in err
    assert str(CLIENT) in process.args[0] or process.args[2] == "synthex_client"


def test_product_create_show_search(cli, provider, token_for):
    token = token_for(provider)
    created = cli(
        "product", "create", "--title", "Census people", "--summary", "Adult-like rows", "--domain", "census",
        "--license", "standard:25.00:USD", "--license", "commercial:99 USD", "--tag", "census", "--json",
        token=token,
    )  # fmt: skip
    assert created.code == 0, created.err
    slug = created.json()["slug"]
    assert slug == "census-people"
    assert [(i["code"], i["price_minor"]) for i in created.json()["licenses"]] == [
        ("standard", 2500),
        ("commercial", 9900),
    ]
    shown = cli("products", "show", slug, token=token)
    assert shown.code == 0
    assert "Census people (census-people) by Acme Synthetic" in shown.out
    assert "license commercial: 99.00 USD" in shown.out
    from django.utils import timezone

    from marketplace.catalog.models import Product

    Product.objects.filter(slug=slug).update(is_listed=True, published_at=timezone.now())
    found = cli("products", "search", "census", "--json")
    assert (found.code, [p["slug"] for p in found.json()["results"]]) == (0, [slug])
    table = cli("products", "list", "--domain", "census")
    assert "census-people" in table.out and "25.00 USD" in table.out
    # People's units in and out: major units with the currency; the API underneath takes minor units.
    assert cli("products", "list", "--min-price", "25.01", "--json").json()["count"] == 0
    assert cli("products", "list", "--min-price", "25", "--max-price", "25.00", "--json").json()["count"] == 1
    human = cli("product", "create", "--title", "Euro rows", "--summary", "S", "--domain", "census",
                "--license", "standard:12.50:EUR", token=token)  # fmt: skip
    assert "license standard: 12.50 EUR" in human.out
    refused = cli("product", "create", "--title", "T", "--summary", "S", "--domain", "census",
                  "--license", "standard:12.505:USD", token=token)  # fmt: skip
    assert refused.code == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["products", "show", "nothing-here"], 3, "error: Not found. (HTTP 404, code not_found)"),
        (
            [
                "product",
                "create",
                "--title",
                "T",
                "--summary",
                "S",
                "--domain",
                "census",
                "--license",
                "standard:1:USD",
            ],
            3,
            "error: You are not a member of any provider organization. (HTTP 403, code not_a_provider)",
        ),
        (
            [
                "product",
                "create",
                "--title",
                "T",
                "--summary",
                "S",
                "--domain",
                "d",
                "--license",
                "standard:1:USD",
            ],
            3,
            'error: domain: "d" is not a valid choice. (HTTP 400, code invalid_choice)',
        ),
        (
            ["product", "create", "--title", "T", "--summary", "S", "--domain", "d", "--license", "1USD"],
            2,
            "",
        ),
        (["products", "list", "--min-quality", "lots"], 3, "code bad_query)"),
    ],
)
def test_api_refusals_exit_3_with_the_api_message(cli, buyer, token_for, args, code, message):
    result = cli(*args, token=token_for(buyer))
    assert result.code == code
    assert message in result.err.replace("\n", " ")


def test_json_errors_and_unreachable_server(cli, token_for, buyer):
    refused = cli("products", "show", "missing", "--json")
    assert refused.code == 3
    assert refused.json() == {
        "error": {"code": "not_found", "detail": "Not found.", "http_status": 404, "exit": 3}
    }
    down = cli("--url", "http://127.0.0.1:9", "products", "list")
    assert down.code == 4
    assert down.err.startswith("error: Cannot reach http://127.0.0.1:9")
