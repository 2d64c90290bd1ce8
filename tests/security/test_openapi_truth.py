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
