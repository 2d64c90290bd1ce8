"""The OpenAPI document tells the truth (issue 9 item 5); schemathesis (test_schemathesis.py)
checks the answers against it, these check the document's own promises."""

from __future__ import annotations

RUN_STREAM = "/admin/apps/{app_id}/coding-agent/runs/{run_id}/stream"


async def _document(client) -> dict:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return await response.get_json()


async def test_path_ids_are_uuids_and_a_malformed_one_is_422(client, owner):
    doc = await _document(client)
    seen = 0
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    assert parameter["schema"] == {"type": "string", "format": "uuid"}, path
                    seen += 1
    assert seen >= 20
    response = await client.get("/admin/apps/not-a-uuid/coding-agent/runs", headers=owner.headers)
    assert response.status_code == 422
    assert (await response.get_json())["detail"][0]["loc"] == ["path", "app_id"]


async def test_stream_documents_its_event_stream(client):
    doc = await _document(client)
    ok = doc["paths"][RUN_STREAM]["get"]["responses"]["200"]
    schema = ok["content"]["text/event-stream"]["schema"]
    assert set(schema["properties"]) >= {"id", "data"}
    assert schema["properties"]["data"]["contentMediaType"] == "application/json"


async def test_every_operation_documents_its_errors(client):
    doc = await _document(client)
    assert {"ErrorDetail", "ValidationItem"} <= set(doc["components"]["schemas"])
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            what = f"{method.upper()} {path}"
            responses = operation["responses"]
            assert "500" not in responses, what
            assert any(code.startswith("2") for code in responses), what
            if operation.get("security") == []:
                continue  # public
            if "401" in responses and operation.get("security"):
                continue  # its own scheme (/metrics)
            for code in ("400", "401", "403"):
                assert code in responses, f"{what} lacks {code}"
            names = [p["name"] for p in operation.get("parameters", [])]
            assert "X-Tenant-ID" in names, what
            for code, response in responses.items():
                if code.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["title"] == "ErrorResponse", f"{what} {code}"
                    assert len(schema["properties"]["detail"]["anyOf"]) == 3, f"{what} {code}"
    assert doc["paths"]["/healthz"]["get"]["security"] == []


RUN_LISTS = ("/admin/apps/{app_id}/coding-agent/runs", "/admin/coding-agent/runs")
PAGING = {"Runwright-Next-Cursor", "Runwright-Prev-Cursor", "Link"}


def _resolve(doc: dict, header: dict) -> dict:
    ref = header.get("$ref")
    if ref is None:
        return header
    name = ref.removeprefix("#/components/headers/")
    return doc["components"]["headers"][name]


async def test_response_headers_are_declared_where_a_reader_finds_them(client, owner, db):
    doc = await _document(client)
    for path in RUN_LISTS:
        ok = doc["paths"][path]["get"]["responses"]["200"]
        assert set(ok["content"]) == {"application/json"}, path  # not a "headers" media type
        assert PAGING <= set(ok["headers"]), path
        for name in PAGING:
            header = _resolve(doc, ok["headers"][name])
            assert header["schema"] == {"type": "string"}, (path, name)
            assert header["description"], (path, name)
    seen = {"429": 0, "503": 0}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                what = f"{method.upper()} {path} {code}"
                headers = response["headers"]
                assert _resolve(doc, headers["X-Request-ID"])["required"] is True, what
                if code in seen:
                    seen[code] += 1
                    retry = _resolve(doc, headers["Retry-After"])
                    assert retry["schema"]["pattern"] == "^[0-9]+$", what
                if code == "401":
                    assert "WWW-Authenticate" in headers, what
    assert seen["429"] >= 2 and seen["503"] >= 10, seen
    create = doc["paths"][RUN_LISTS[0]]["post"]["responses"]
    assert "Retry-After" in create["429"]["headers"]

    # The headers a real answer carries are the ones the document declares.
    app_response = await client.post(
        "/admin/apps", json={"name": "Paged", "slug": "paged"}, headers=owner.headers
    )
    app_id = (await app_response.get_json())["id"]
    await db.execute_raw(
        "INSERT INTO agent_runs (id, tenant_id, published_app_id, execution_engine, status) "
        f"SELECT gen_random_uuid(), '{owner.tenant_id}', '{app_id}', 'native', 'completed' "
        "FROM generate_series(1, 3);"
    )
    first = await client.get(
        f"/admin/apps/{app_id}/coding-agent/runs?limit=1", headers=owner.headers
    )
    cursor = first.headers["Runwright-Next-Cursor"]
    middle = await client.get(
        f"/admin/apps/{app_id}/coding-agent/runs?limit=1&cursor={cursor}", headers=owner.headers
    )
    assert middle.status_code == 200
    declared = {
        name.lower() for name in doc["paths"][RUN_LISTS[0]]["get"]["responses"]["200"]["headers"]
    }
    sent = {
        name.lower()
        for name in middle.headers.keys()
        if name.lower().startswith(("runwright-", "link", "x-request"))
    }
    assert sent == declared == {n.lower() for n in PAGING} | {"x-request-id"}
