"""Every API operation in the OpenAPI schema, called with garbage by an anonymous user and a buyer,
answers a 4xx, never a 500 or an exception."""

import pytest

pytestmark = pytest.mark.django_db

BODIES = [
    None,
    {},
    {"x": 1},
    "not json",
    [1, 2],
    {"version": "abc", "license": None, "rows": -1, "format": "exe", "filename": "", "size": "big"},
]


def test_no_api_call_answers_500_to_garbage(client, buyer, api_client_for):
    schema = client.get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    assert {
        "/api/v1/orders/",
        "/api/v1/uploads/",
        "/api/v1/ledger/head/",
        "/api/v1/certificates/verify/",
    } <= set(paths)
    clients = {"anon": api_client_for(None), "buyer": api_client_for(buyer)}
    failures = []
    for path, ops in paths.items():
        concrete = path
        for name in [
            "slug",
            "number",
            "id",
            "job_id",
            "certificate_id",
            "upload_id",
            "index",
            "order_id",
            "entitlement_id",
            "draw_id",
            "token",
            "file",
            "fmt",
            "delivery_id",
        ]:
            concrete = concrete.replace(
                "{" + name + "}",
                "1"
                if name in ("number", "index", "file")
                else ("00000000-0000-0000-0000-000000000000" if name == "job_id" else "nope"),
            )
        for method in ops:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for who, c in clients.items():
                for body in BODIES:
                    if method in ("get", "delete") and body not in (None,):
                        continue
                    fn = getattr(c, method)
                    try:
                        if isinstance(body, str):
                            r = fn(concrete, data=body, content_type="application/json")
                        else:
                            r = fn(concrete, body, format="json") if body is not None else fn(concrete)
                    except Exception as e:
                        failures.append((method, concrete, who, body, repr(e)[:200]))
                        continue
                    if r.status_code >= 500:
                        failures.append((method, concrete, who, body, r.status_code, r.content[:200]))
    assert not failures, "\n".join(map(str, failures))
