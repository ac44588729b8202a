"""Finding 8: HEAD on every GET route, a truthful Allow, 415 for a body the route does not read, and an
OpenAPI document that describes pages as HTML and redirects as 303. Routes come from the app's own route
table, so a route added later is checked too."""

import re
import uuid
from typing import Annotated

import msgspec
from litestar import post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.routes import HTTPRoute

from app.accounts.tables import Membership
from app.asgi import create_app
from app.web.requests import FORM_MEDIA_TYPES, accepted_media_types

EXAMPLES = {"uuid": str(uuid.UUID(int=1)), "int": "1", "str": "x", "path": "app.css"}
PARAMETER = re.compile(r"{(\w+):(\w+)}")


def route_table() -> dict[str, set[str]]:
    methods: dict[str, set[str]] = {}
    for route in create_app().routes:
        if isinstance(route, HTTPRoute):
            methods.setdefault(route.path, set()).update(route.methods)
    return methods


ROUTES = route_table()


def example_path(path: str) -> str:
    return PARAMETER.sub(lambda m: EXAMPLES[m.group(2)], path)


def expected_allow(methods: set[str]) -> str:
    methods = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
    return ", ".join(sorted(methods))


GET_PATHS = sorted(path for path, methods in ROUTES.items() if "GET" in methods)


async def test_it_answers_head_like_get_without_a_body_on_every_get_route(client, personas):
    await client.login(personas.admin.email)
    problems = []
    for path in GET_PATHS:
        url = example_path(path)
        get, head = await client.get(url), await client.http.head(url)
        same = (head.status_code, head.headers.get("content-type"), head.headers.get("location")) == (
            get.status_code, get.headers.get("content-type"), get.headers.get("location"))
        if not same or head.content:
            problems.append(f"{url}: GET {get.status_code}, HEAD {head.status_code} with {len(head.content)} bytes")
    assert len(GET_PATHS) > 30
    assert not problems, "\n".join(problems)


async def test_it_answers_head_signed_out_like_get(client):
    head = await client.http.head("/admin/courses")
    assert head.status_code == 303 and head.headers["location"].startswith("/login")
    assert (await client.http.head("/no/such/page")).status_code == 404


async def test_it_lists_every_method_of_a_path_in_options(client):
    problems = []
    for path, methods in sorted(ROUTES.items()):
        response = await client.http.options(example_path(path))
        if response.status_code != 204 or response.headers.get("allow") != expected_allow(methods):
            problems.append(f"{path}: {response.status_code} {response.headers.get('allow')}")
    assert not problems, "\n".join(problems)


async def test_it_lists_post_for_a_page_that_takes_a_form(client):
    # Litestar's own OPTIONS answer said "GET, OPTIONS" here: POST /login was registered after GET /login.
    response = await client.http.options("/login")
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


async def test_it_lists_the_real_methods_in_a_405(client):
    response = await client.http.delete("/login")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


async def test_it_refuses_json_sent_to_a_form_with_415(client, personas):
    await client.get("/login")
    response = await client.http.post("/login", json={"email": personas.admin.email, "password": "x"},
                                      headers={"x-csrftoken": client.csrf})
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.text and "application/json" in response.text
    assert client.session_cookie is None


async def test_it_refuses_a_json_body_on_an_action_and_changes_nothing(client, personas):
    await client.login(personas.admin.email)
    response = await client.http.post(f"/admin/members/{personas.learner.membership_id}/remove",
                                      content=b'{"confirm": true}',
                                      headers={"content-type": "application/json", "x-csrftoken": client.csrf,
                                               "HX-Request": "true"})
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("text/html")
    assert await Membership.exists().where(Membership.id == personas.learner.membership_id)


async def test_it_refuses_text_plain_and_answers_json_on_the_api_with_415(client, personas):
    await client.get("/login")
    response = await client.http.post("/login", content=b"email=a", headers={
        "content-type": "text/plain", "x-csrftoken": client.csrf, "accept": "application/json"})
    assert response.status_code == 415
    assert response.json()["status"] == 415


async def test_it_still_accepts_a_form_and_an_empty_post(client, personas):
    await client.login(personas.admin.email)  # a url-encoded form
    assert client.session_cookie
    empty = await client.http.post("/logout", headers={"x-csrftoken": client.csrf})
    assert empty.status_code == 303


class Note(msgspec.Struct):
    text: str


@post("/example/json", sync_to_thread=False)
def json_api(data: Note) -> None: ...


@post("/example/form", sync_to_thread=False)
def form_action(data: Annotated[Note, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> None: ...


@post("/example/bare", sync_to_thread=False)
def bare_action() -> None: ...


def test_it_reads_what_a_route_accepts_from_its_data_parameter():
    # No JSON-body route exists yet; the rule that will guard one: a JSON API refuses a form with 415.
    assert accepted_media_types(json_api) == ("application/json",)
    assert accepted_media_types(form_action) == FORM_MEDIA_TYPES
    assert accepted_media_types(bare_action) == FORM_MEDIA_TYPES  # a form post's CSRF token rides in its body


def _success_media_types(operation: dict) -> set[str]:
    return {media for status, response in operation["responses"].items() if status.startswith("2")
            for media in (response.get("content") or {})}


async def test_it_documents_pages_as_html_and_form_posts_as_303(client):
    document = (await client.get("/schema/openapi.json")).json()
    checked = 0
    for path, operations in document["paths"].items():
        if path.startswith("/api/") or path.endswith("/json"):
            continue
        if path.endswith(".md"):  # a Markdown download (the spot-check log), documented as what it is
            assert _success_media_types(operations["get"]) == {"text/markdown"}, path
            checked += 1
            continue
        for method, operation in operations.items():
            assert _success_media_types(operation) == {"text/html"}, (method, path)
            assert "303" in operation["responses"], (method, path)
            assert not operation["responses"]["303"].get("content"), (method, path)
            if method == "post":
                assert "201" not in operation["responses"], path
            checked += 1
    assert checked > 30
    assert _success_media_types(document["paths"]["/api/courses"]["get"]) == {"application/json"}
    assert _success_media_types(document["paths"]["/admin/items/{item_id}/json"]["get"]) == {"application/json"}
