import re

API_ENDPOINT_PREFIX = "api."
NOT_JSON = {"api.docs"}  # the human rendering of the document


def flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_json_route_is_documented_and_every_documented_path_exists(app, client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(API_ENDPOINT_PREFIX) and rule.endpoint not in NOT_JSON:
            routes.setdefault(flask_to_openapi(rule.rule), set()).update(
                m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(item) for path, item in spec["paths"].items()}
    assert documented == routes


def test_every_operation_documents_its_errors_and_schemas_resolve(client):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    text = client.get("/openapi.json").get_data(as_text=True)
    for ref in re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', text):
        assert ref in schemas
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert "200" in operation["responses"]
            if "{number}" in path:
                assert "422" in operation["responses"], (method, path)


def test_docs_page_renders_every_path_without_cdn(client):
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for path in client.get("/openapi.json").get_json()["paths"]:
        assert path in html
    assert "http://" not in html.replace("http://localhost", "") and "https://" not in html
