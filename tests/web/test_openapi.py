import re

API_ENDPOINT_PREFIX = "api."
NOT_JSON = {"api.docs", "api.swagger_ui_file"}  # the human rendering of the document, and its files


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


def test_docs_page_is_swagger_ui_served_by_the_app_without_cdn(client):
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for path in client.get("/openapi.json").get_json()["paths"]:
        assert path in html  # listed for a browser without JavaScript too
    assert "http://" not in html.replace("http://localhost", "") and "https://" not in html
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts == ["/docs/swagger-ui-bundle.js", "/static/js/docs.js"] and "<script>" not in html
    for asset in [*scripts, "/docs/swagger-ui.css"]:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.data) > 500, asset
    assert "SwaggerUIBundle" in client.get("/docs/swagger-ui-bundle.js").get_data(as_text=True)
    assert client.get("/docs/oauth2-redirect.html").status_code == 404  # only the two files the page uses


def test_only_the_docs_page_lets_images_be_data_urls(client):
    """Swagger UI's stylesheet draws its icons as data: images; every other page keeps the strict policy."""
    docs = client.get("/docs").headers["Content-Security-Policy"]
    assert "img-src 'self' data:" in docs and "script-src" not in docs and "unsafe" not in docs
    for path in ("/", "/login", "/openapi.json", "/docs/swagger-ui.css"):
        assert "data:" not in client.get(path).headers["Content-Security-Policy"], path


def test_the_favicon_is_served_and_every_page_links_it(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    for path in ("/login", "/docs"):
        assert 'rel="icon" href="/static/favicon.ico"' in client.get(path).get_data(as_text=True), path


def test_the_document_states_the_rules_the_api_enforces(client):
    """Patterns and bounds come from rules.py: what the document promises is what the ledger checks."""
    from atm_web.core import rules
    spec = client.get("/openapi.json").get_json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    number = paths["/accounts/{number}/balance"]["get"]["parameters"][0]["schema"]["pattern"]
    assert number == f"^{rules.ACCOUNT_NUMBER_PATTERN}$"
    assert re.fullmatch(number, "A" * 34) and not re.fullmatch(number, "A" * 35)
    limit = paths["/accounts/{number}/overdraft-limit"]["put"]["requestBody"]["content"]["application/json"]
    assert limit["schema"]["properties"]["overdraft_limit"]["oneOf"][0]["maximum"] * 100 == rules.LIMIT_MAX_CENTS
    history = paths["/accounts/{number}/transactions"]["get"]["parameters"][1]["schema"]
    assert history["maximum"] == rules.HISTORY_MAX
    assert schemas["Transaction"]["properties"]["kind"]["enum"] == list(rules.KIND_LABELS)
    reversal = paths["/transactions/{tx_id}/reversal"]["post"]["requestBody"]["content"]["application/json"]
    assert reversal["schema"]["properties"]["reason"]["maxLength"] == rules.REASON_MAX
