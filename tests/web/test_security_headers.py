"""Finding 3: security headers on every response, no inline script or style, escaped error echoes."""

import re

import pytest

from app.web.requests import CONTENT_SECURITY_POLICY
from tests.conftest import ROOT, start_server

MARKUP = "<i>x</i>"  # short: the review filters refuse long values before echoing them


def assert_security_headers(response) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, response.url
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_it_allows_only_our_own_scripts_and_styles():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path,status", [
    ("/login", 200),
    ("/", 303),
    ("/no/such/page", 404),
    ("/api/no/such/thing", 404),
    ("/static/app.js", 200),
    ("/static/app.js%00.png", 404),
    ("/health/live", 200),
    ("/admin/courses", 303),  # signed out: sent to the login page
])
async def test_it_sends_security_headers_on_every_kind_of_response(client, path, status):
    response = await client.get(path)
    assert response.status_code == status
    assert_security_headers(response)


async def test_it_sends_security_headers_on_refused_posts_and_wrong_methods(client):
    refused = await client.post("/login", {"email": "a@example.test"}, csrf=False)
    assert refused.status_code == 403
    assert_security_headers(refused)
    wrong_method = await client.http.put("/login")
    assert wrong_method.status_code == 405
    assert_security_headers(wrong_method)


async def test_it_sends_no_hsts_over_plain_http(client):
    response = await client.get("/login")
    assert "strict-transport-security" not in response.headers


@pytest.fixture(scope="module")
def proxied_server(live_server):
    # One trusted proxy: uvicorn takes the scheme from X-Forwarded-Proto.
    server = start_server("behind-tls-proxy", TRUSTED_PROXY_HOPS="1", WORKER_IN_PROCESS="false")
    yield server
    server.stop()


async def test_it_sends_hsts_when_a_trusted_proxy_says_https(client_factory, proxied_server):
    client = client_factory(proxied_server.url)
    over_https = await client.get("/login", headers={"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"})
    assert over_https.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert_security_headers(over_https)
    over_http = await client.get("/login", headers={"x-forwarded-proto": "http", "x-forwarded-for": "203.0.113.9"})
    assert "strict-transport-security" not in over_http.headers


async def test_it_escapes_markup_echoed_in_an_htmx_error(client, personas):
    await client.login(personas.admin.email)
    response = await client.get("/admin/review", params={"kind": MARKUP}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert MARKUP not in response.text
    assert "&lt;i&gt;x&lt;/i&gt;" in response.text  # the message still says what was wrong
    assert_security_headers(response)


async def test_it_escapes_markup_echoed_in_an_error_page_and_json(client, personas):
    await client.login(personas.admin.email)
    page = await client.get("/admin/review", params={"kind": MARKUP})
    assert page.status_code == 400
    assert MARKUP not in page.text and "&lt;i&gt;x&lt;/i&gt;" in page.text
    api = await client.get("/api/courses/not-a-uuid")
    assert api.headers["content-type"].startswith("application/json")


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=|javascript:|\shx-on[:-]", re.I)
EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def test_it_keeps_every_script_and_style_in_static_files():
    problems = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = re.sub(r"{#.*?#}", "", template.read_text(), flags=re.S)  # Jinja comments are not sent
        for name, pattern in [("inline script", INLINE_SCRIPT), ("inline style", INLINE_STYLE),
                              ("event handler", EVENT_HANDLER), ("external resource", EXTERNAL_URL)]:
            problems.extend(f"{template.relative_to(ROOT)}: {name}: {m.group(0)}" for m in pattern.finditer(text))
    assert not problems, "\n".join(problems)


async def test_it_tells_htmx_not_to_inject_its_indicator_style(client):
    page = await client.get("/login")
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false""" in page.text
    css = await client.get("/static/app.css")
    assert ".htmx-request .htmx-indicator" in css.text
