"""Security tests driven by the app's own route table (issue 8): every route Litestar serves is read at run
time, so a route added later is checked without anyone remembering to add it here.

For each route: unsafe methods refuse a missing or forged CSRF token and change nothing; routes with ids
answer 404 to an admin of another workspace; admin routes refuse learners; guarded routes send a
signed-out visitor to sign in (401 for the APIs); and no parameter value of a bad-input corpus makes
any route answer 5xx.

A route with path parameters needs one line in EXAMPLES (which value of the test world to use), and a
route without a guard one line in PUBLIC saying why; test_it_knows_every_route fails until they are added.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import msgspec
import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from app.asgi import create_app
from app.web.auth import requires_admin, requires_login
from tests.conftest import Client, LiveServer
from tests.web.world import World, changed_tables, database_fingerprint

# Not our handlers; skipped on purpose.
SKIPPED = {
    "/static": "files of static/, served by Litestar's static files router (a NUL in their path: test_bad_input)",
    "/schema": "Litestar's generated API docs; test_schemathesis drives the APIs from /schema/openapi.json",
}

# Open to anyone by design. Every other route must have a guard (requires_login or requires_admin).
PUBLIC = {
    "/": "sends the visitor to /login or to their home page",
    "/login": "signing in",
    "/logout": "signing out is harmless without a session, and must work with an expired one",
    "/health/live": "liveness probe for the orchestrator",
    "/health/ready": "readiness probe for the load balancer",
    "/metrics": "Prometheus scrape; needs the METRICS_TOKEN bearer token when one is set (finding 6)",
    "/favicon.ico": "browsers ask for it on every site; it redirects to the public /static/favicon.svg",
    "/invitations/{token:str}": "the invitee may have no account yet: the link's token is the credential",
    "/api/billing/stripe/webhook": "Stripe calls it without a session or CSRF token: its Stripe-Signature over "
                                   "the raw body is the credential (tests/billing/test_webhook.py)",
}

# Routes that answer another workspace's ids with 403 instead of 404, because the seeds say so.
CROSS_TENANT_403 = {
    "/learn/store/products/{product_id:uuid}/buy": "buying another workspace's product is 403 (SPEC C3)",
}

# The example values of each route's path parameters, required query parameters and (optionally) form
# fields: a string naming a World field is that field's value, anything else is a literal (Text("...")
# for a literal string). One line per route; the route table decides what is checked. Form examples are
# valid values, so that a refusal is the check under test at work and not the form's own validation.
class Text(str):
    """A literal example string (a plain string names a World field)."""


EXAMPLES: dict[str, dict[str, Any]] = {
    "/admin/members/{membership_id:uuid}": {"membership_id": "membership_id"},
    "/admin/members/{membership_id:uuid}/role": {"membership_id": "membership_id", "role": Text("admin")},
    "/admin/members/{membership_id:uuid}/remove": {"membership_id": "membership_id"},
    "/learn/{course_id:uuid}": {"course_id": "syllabus_id"},
    "/learn/{course_id:uuid}/enroll": {"course_id": "syllabus_id"},
    "/learn/{course_id:uuid}/upgrade": {"course_id": "syllabus_id"},
    "/learn/{course_id:uuid}/continue": {"course_id": "syllabus_id"},
    "/learn/{course_id:uuid}/lesson/{index:int}": {"course_id": "syllabus_id", "index": "index"},
    "/learn/{course_id:uuid}/lesson/{index:int}/complete": {"course_id": "syllabus_id", "index": "index"},
    "/learn/{course_id:uuid}/lesson/{index:int}/quiz": {"course_id": "syllabus_id", "index": "index"},
    "/learn/{course_id:uuid}/module/{module_index:int}/project": {"course_id": "syllabus_id",
                                                                  "module_index": "module_index"},
    "/learn/{course_id:uuid}/exports": {"course_id": "syllabus_id", "format": Text("HTML")},
    "/learn/exports/{export_id:uuid}": {"export_id": "export_id"},
    "/learn/exports/{export_id:uuid}/download": {"export_id": "export_id"},
    "/api/learn/courses/{course_id:uuid}": {"course_id": "syllabus_id"},
    "/api/learn/courses/{course_id:uuid}/lessons/{index:int}": {"course_id": "syllabus_id", "index": "index"},
    "/admin/syllabi/{syllabus_id:uuid}/publish": {"syllabus_id": "syllabus_id"},
    "/admin/packages/{syllabus_id:uuid}": {"syllabus_id": "syllabus_id"},
    "/admin/packages/{syllabus_id:uuid}/v/{version:int}": {"syllabus_id": "syllabus_id", "version": "version"},
    "/admin/packages/{syllabus_id:uuid}/v/{version:int}/json": {"syllabus_id": "syllabus_id", "version": "version"},
    "/admin/packages/{package_id:uuid}/archive": {"package_id": "package_id"},
    "/admin/packages/{syllabus_id:uuid}/diff": {"syllabus_id": "syllabus_id", "a": "version", "b": "version"},
    "/admin/packages/{syllabus_id:uuid}/learners": {"syllabus_id": "syllabus_id"},
    "/admin/packages/{syllabus_id:uuid}/questions": {"syllabus_id": "syllabus_id"},
    "/admin/packages/{package_id:uuid}/exports": {"package_id": "package_id", "format": Text("HTML")},
    "/admin/exports/{export_id:uuid}": {"export_id": "export_id"},
    "/admin/exports/{export_id:uuid}/retry": {"export_id": "export_id"},
    "/admin/exports/{export_id:uuid}/download": {"export_id": "export_id"},
    "/api/courses/{syllabus_id:uuid}": {"syllabus_id": "syllabus_id"},
    "/api/courses/{syllabus_id:uuid}/{version:int}": {"syllabus_id": "syllabus_id", "version": "version"},
    "/admin/jobs/{job_id:uuid}": {"job_id": "job_id"},
    "/admin/audit/{entry_id:int}": {"entry_id": "audit_entry_id"},
    "/admin/courses/{course_id:uuid}": {"course_id": "course_id"},
    "/admin/courses/{course_id:uuid}/brief": {"course_id": "course_id"},
    "/admin/runs/{run_id:uuid}": {"run_id": "run_id"},
    "/admin/runs/{run_id:uuid}/retry": {"run_id": "run_id"},
    "/admin/runs/{run_id:uuid}/regenerate-failed": {"run_id": "run_id"},
    "/admin/syllabi/{syllabus_id:uuid}": {"syllabus_id": "syllabus_id"},
    "/admin/syllabi/{syllabus_id:uuid}/json": {"syllabus_id": "syllabus_id"},
    "/admin/syllabi/{syllabus_id:uuid}/approve": {"syllabus_id": "syllabus_id"},
    "/admin/syllabi/{syllabus_id:uuid}/reject": {"syllabus_id": "syllabus_id", "reason": Text("too long")},
    "/admin/syllabi/{syllabus_id:uuid}/regenerate": {"syllabus_id": "syllabus_id", "instruction": Text("shorter")},
    "/admin/syllabi/{syllabus_id:uuid}/content": {"syllabus_id": "syllabus_id"},
    "/admin/syllabi/{syllabus_id:uuid}/edit": {"syllabus_id": "syllabus_id"},
    "/admin/syllabi/{syllabus_id:uuid}/compare": {"syllabus_id": "syllabus_id"},
    "/admin/syllabi/{syllabus_id:uuid}/modules/{module_index:int}/approve": {"syllabus_id": "syllabus_id",
                                                                             "module_index": "module_index"},
    "/admin/items/{item_id:uuid}": {"item_id": "item_id"},
    "/admin/items/{item_id:uuid}/json": {"item_id": "item_id"},
    "/admin/items/{item_id:uuid}/approve": {"item_id": "item_id"},
    "/admin/items/{item_id:uuid}/reject": {"item_id": "item_id", "reason": Text("too vague")},
    "/admin/items/{item_id:uuid}/regenerate": {"item_id": "item_id"},
    "/admin/review/bulk": {"action": Text("approve"), "item_ids": "item_id"},
    "/admin/items/{item_id:uuid}/edit": {"item_id": "item_id"},
    "/admin/items/{item_id:uuid}/preview": {"item_id": "item_id"},
    "/admin/items/{item_id:uuid}/new-revision": {"item_id": "item_id"},
    "/admin/invitations/{invitation_id:uuid}/resend": {"invitation_id": "invitation_id"},
    "/admin/invitations/{invitation_id:uuid}/revoke": {"invitation_id": "invitation_id"},
    "/invitations/{token:str}": {"token": "invitation_token"},
    "/learn/store/products/{product_id:uuid}/buy": {"product_id": "product_id"},
    "/learn/purchases/{purchase_id:uuid}": {"purchase_id": "purchase_id"},
    "/admin/store/products": {"syllabus_id": "syllabus_id", "title": Text("World course"), "price": Text("19"),
                              "currency": Text("EUR")},
    "/admin/store/products/{product_id:uuid}": {"product_id": "product_id", "title": Text("World course"),
                                                "price": Text("19"), "currency": Text("EUR")},
    "/admin/store/products/{product_id:uuid}/activate": {"product_id": "product_id"},
    "/admin/store/products/{product_id:uuid}/deactivate": {"product_id": "product_id"},
    "/admin/store/events/{event_id:uuid}": {"event_id": "billing_event_id"},
    "/admin/store/events/{event_id:uuid}/replay": {"event_id": "billing_event_id"},
    "/api/admin/analytics/course/{course_id:uuid}": {"course_id": "syllabus_id"},
    "/api/admin/analytics/funnel/{course_id:uuid}": {"course_id": "syllabus_id"},
    "/admin/analytics/signals/{signal_id:uuid}/status": {"signal_id": "signal_id", "status": Text("ACKNOWLEDGED")},
    "/admin/analytics/signals/{signal_id:uuid}/json": {"signal_id": "signal_id"},
    "/admin/suggestions/{suggestion_id:uuid}": {"suggestion_id": "suggestion_id"},
    "/admin/suggestions/{suggestion_id:uuid}/json": {"suggestion_id": "suggestion_id"},
    "/admin/suggestions/{suggestion_id:uuid}/accept": {"suggestion_id": "suggestion_id", "note": Text("looks right")},
    "/admin/suggestions/{suggestion_id:uuid}/dismiss": {"suggestion_id": "suggestion_id", "note": Text("not now")},
    "/api/admin/suggestions/{suggestion_id:uuid}/accept": {"suggestion_id": "suggestion_id"},
    "/api/admin/suggestions/{suggestion_id:uuid}/dismiss": {"suggestion_id": "suggestion_id"},
    "/admin/regeneration-jobs/{job_id:uuid}/retry-intents": {"job_id": "failed_regeneration_job_id",
                                                              "reason_code": Text("OTHER"),
                                                              "reason_text": Text("try again")},
    "/admin/retry-intents/{intent_id:uuid}": {"intent_id": "retry_intent_id"},
    "/admin/retry-intents/{intent_id:uuid}/approve": {"intent_id": "retry_intent_id"},
    "/admin/retry-intents/{intent_id:uuid}/reject": {"intent_id": "retry_intent_id", "note": Text("not now")},
    "/admin/retry-intents/{intent_id:uuid}/execute": {"intent_id": "retry_intent_id"},
    "/api/admin/retry-intents/{intent_id:uuid}": {"intent_id": "retry_intent_id"},
    "/api/admin/retry-intents/{intent_id:uuid}/approve": {"intent_id": "retry_intent_id"},
    "/api/admin/retry-intents/{intent_id:uuid}/reject": {"intent_id": "retry_intent_id"},
    "/api/admin/retry-intents/{intent_id:uuid}/execute": {"intent_id": "retry_intent_id"},
    "/admin/regeneration-jobs/new": {"item": "item_id"},
    "/admin/regeneration-jobs/{job_id:uuid}": {"job_id": "regeneration_job_id"},
    "/admin/regeneration-jobs/{job_id:uuid}/trigger": {"job_id": "regeneration_job_id"},
    "/api/admin/regeneration-jobs/{job_id:uuid}": {"job_id": "regeneration_job_id"},
    "/api/admin/regeneration-jobs/{job_id:uuid}/trigger": {"job_id": "regeneration_job_id"},
    "/admin/lineage/items/{item_id:uuid}": {"item_id": "item_id"},
    "/admin/lineage/signals/{signal_id:uuid}": {"signal_id": "signal_id"},
    "/admin/quality/traffic/runs/{report_id:uuid}": {"report_id": "traffic_report_id"},
    "/admin/quality/spot-checks/{spot_check_id:uuid}": {
        "spot_check_id": "spot_check_id", "checked_on": Text("2026-01-05"), "course_id": "course_id",
        "module_index": Text("1"), "traffic": Text("3"), "checked": Text("hints"), "observed": Text("fine"),
        "follow_up": Text("none")},
    "/admin/quality/spot-checks/{spot_check_id:uuid}/edit": {"spot_check_id": "spot_check_id"},
    "/admin/quality/spot-checks/{spot_check_id:uuid}/delete": {"spot_check_id": "spot_check_id"},
    "/admin/quality/courses/{course_id:uuid}/resources": {"course_id": "course_id"},
    "/admin/quality/courses/{course_id:uuid}/modules/{module_index:int}/resources": {
        "course_id": "course_id", "module_index": "module_index", "title": Text("A reference"),
        "url": Text("https://example.org/a"), "kind": Text("ARTICLE")},
    "/admin/quality/resources/{resource_id:uuid}/remove": {"resource_id": "resource_id"},
}

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Handler arguments Litestar fills in itself: not parameters a client sends.
RESERVED = {"request", "data", "scope", "state", "socket", "headers", "cookies", "query", "body"}

# The bad-input corpus: every value goes into every parameter (path, query, form field) of every route.
CORPUS = {
    "nul": "a\x00b",
    "control characters": "\x1b[2J\x07\x08",
    "100k characters": "x" * 100_000,  # 8,000 in a URL: httpx (like browsers and proxies) refuses longer ones
    "int4 overflow": str(2**31),
    "int8 overflow": str(2**63),
    "10**20": str(10**20),
    "5000 digits": "9" * 5000,  # beyond Python's default limit for int("...")
    "negative": "-1",
    "below int4": str(-(2**31) - 1),
    "malformed uuid": "00000000-0000-0000-0000-00000000000g",
    "not a uuid": "not-a-uuid",
    "date 9999-12-31": "9999-12-31",
    "date 0000-00-00": "0000-00-00",
}
CONCURRENCY = 4


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    handler: HTTPRouteHandler
    path_params: tuple[str, ...]

    @property
    def guard(self) -> str | None:
        guards = [g for layer in self.handler.ownership_layers for g in (layer.guards or [])]
        if requires_admin in guards:
            return "admin"
        return "login" if requires_login in guards else None

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def query_params(self) -> list[str]:
        params = self.handler.parsed_fn_signature.parameters
        return [name for name in params if name not in RESERVED and name not in self.path_params]

    @property
    def required_query_params(self) -> list[str]:
        params = self.handler.parsed_fn_signature.parameters
        return [name for name in self.query_params if not params[name].has_default]

    @property
    def form_fields(self) -> list[str]:
        data = self.handler.parsed_fn_signature.parameters.get("data")
        if data is None:
            return []
        annotation = data.annotation
        if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
            return [field.name for field in msgspec.structs.fields(annotation)]
        return []

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _routes() -> list[Route]:
    routes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Litestar's deprecation notes about our path style; not this test's subject
        app = create_app()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or any(route.path.startswith(prefix) for prefix in SKIPPED):
            continue
        params = tuple(route.path_parameters)
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                routes.append(Route(route.path, method, handler, params))
    return routes


ROUTES = _routes()


def _has_examples(route: Route) -> bool:
    # A route without its example values is reported by test_it_knows_every_route; the other tests
    # check every route that has them, so one missing line fails one test with a clear message.
    return all(name in EXAMPLES.get(route.path, {}) for name in (*route.path_params, *route.required_query_params))


CHECKABLE = [route for route in ROUTES if _has_examples(route)]


def _example(route: Route, world: World, name: str) -> str:
    value = EXAMPLES[route.path][name]
    return str(getattr(world, value) if isinstance(value, str) and not isinstance(value, Text) else value)


def _form(route: Route, world: World) -> list[tuple[str, str]]:
    examples = EXAMPLES.get(route.path, {})
    return [(name, _example(route, world, name)) for name in route.form_fields if name in examples]


def _url(route: Route, world: World, path_override: tuple[str, str] | None = None,
         query: list[tuple[str, str]] | None = None) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(1)
        value = path_override[1] if path_override and path_override[0] == name else _example(route, world, name)
        return quote(value, safe="")

    url = re.sub(r"\{(\w+):[^}]+\}", fill, route.path)
    given = {name for name, _ in query or []}
    pairs = [(name, _example(route, world, name)) for name in route.required_query_params if name not in given]
    pairs += query or []
    return url + ("?" + urlencode(pairs) if pairs else "")


async def _send(client: Client, method: str, url: str, form: list[tuple[str, str]] | None = None, *,
                csrf: str = "valid") -> httpx.Response:
    """A request as a browser form would send it; `csrf` is "valid", "missing", "forged form" or "forged header"."""
    if method not in UNSAFE:
        return await client.http.request(method, url)
    fields = list(form or [])
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if csrf == "valid":
        fields.append(("_csrf_token", client.csrf))
    elif csrf == "forged form":
        fields.append(("_csrf_token", "forged"))
    elif csrf == "forged header":
        headers["x-csrftoken"] = "forged"
    return await client.http.request(method, url, content=urlencode(fields), headers=headers)


# ---------------------------------------------------------------------------------------------
# One world and one signed-in client per persona for the whole module


@pytest.fixture(scope="module")
async def clients(live_server: LiveServer, world: World):
    made = {"anonymous": Client(live_server.url), "admin": Client(live_server.url),
            "learner": Client(live_server.url), "outsider": Client(live_server.url)}
    await made["admin"].login(world.admin.email)
    await made["learner"].login(world.learner.email)
    await made["outsider"].login(world.outsider.email)
    await made["anonymous"].get("/login")  # the CSRF cookie
    yield made
    for client in made.values():
        await client.aclose()


def _member_for(route: Route, clients: dict[str, Client]) -> Client:
    """The persona entitled to the route: an Acme admin, the enrolled Acme learner, or nobody."""
    return clients[{"admin": "admin", "login": "learner", None: "anonymous"}[route.guard]]


# ---------------------------------------------------------------------------------------------


def test_it_knows_every_route():
    problems = []
    for route in ROUTES:
        examples = EXAMPLES.get(route.path, {})
        for name in (*route.path_params, *route.required_query_params):
            if name not in examples:
                problems.append(f"{route}: no example value for {name!r}: add a line to EXAMPLES")
        if route.guard is None and route.path not in PUBLIC:
            problems.append(f"{route}: has no guard; guard it, or list it in PUBLIC with the reason")
    paths = {route.path for route in ROUTES}
    listed = (*EXAMPLES, *PUBLIC, *CROSS_TENANT_403)
    problems += [f"{path}: in EXAMPLES/PUBLIC but not in the route table" for path in listed if path not in paths]
    assert problems == []
    assert len(ROUTES) >= 50  # the table really was read


async def test_it_refuses_unsafe_requests_without_a_valid_csrf_token(world, clients):
    # A route that opts out of CSRF (the Stripe webhook) is authenticated by something else; listed in PUBLIC.
    unsafe = [route for route in CHECKABLE if route.method in UNSAFE and not route.handler.opt.get("exclude_from_csrf")]
    assert len(unsafe) >= 20
    problems = []
    for route in unsafe:
        client = _member_for(route, clients)
        url = _url(route, world)
        before = await database_fingerprint()
        for csrf in ("missing", "forged form", "forged header"):
            response = await _send(client, route.method, url, _form(route, world), csrf=csrf)
            if response.status_code != 403:
                problems.append(f"{route} with the token {csrf}: {response.status_code}")
        if changed := changed_tables(before, await database_fingerprint()):
            problems.append(f"{route}: changed {changed}")
    assert problems == []


async def test_it_answers_404_to_an_admin_of_another_workspace(world, clients):
    # Public routes are open by design (an invitation link works for whoever holds it).
    with_ids = [route for route in CHECKABLE if route.path_params and route.path not in PUBLIC]
    assert len(with_ids) >= 30
    before = await database_fingerprint()
    problems = []
    for route in with_ids:
        response = await _send(clients["outsider"], route.method, _url(route, world), _form(route, world))
        if response.status_code != (403 if route.path in CROSS_TENANT_403 else 404):
            problems.append(f"{route}: {response.status_code}")
    assert problems == []
    assert changed_tables(before, await database_fingerprint()) == []


async def test_it_refuses_admin_routes_to_a_learner(world, clients):
    admin_routes = [route for route in CHECKABLE if route.guard == "admin"]
    before = await database_fingerprint()
    problems = []
    for route in admin_routes:
        response = await _send(clients["learner"], route.method, _url(route, world), _form(route, world))
        if response.status_code not in (403, 404):
            problems.append(f"{route}: {response.status_code}")
    assert problems == []
    assert changed_tables(before, await database_fingerprint()) == []


async def test_it_sends_signed_out_visitors_to_sign_in(world, clients):
    guarded = [route for route in CHECKABLE if route.guard]
    before = await database_fingerprint()
    problems = []
    for route in guarded:
        response = await _send(clients["anonymous"], route.method, _url(route, world), _form(route, world))
        if route.is_api:
            ok = response.status_code == 401 and response.headers["content-type"].startswith("application/json")
        else:
            ok = response.status_code == 303 and response.headers["location"].startswith("/login")
        if not ok:
            problems.append(f"{route}: {response.status_code} {response.headers.get('location', '')}")
    assert problems == []
    assert changed_tables(before, await database_fingerprint()) == []


URL_MAX = 8_000


def _corpus_cases(route: Route, world: World) -> list[tuple[str, str | None, list, list | None]]:
    """(label, path value, query pairs, form fields) for each bad value in each parameter of the route;
    the other parameters keep their example values, so the bad one is what the route has to handle."""
    cases = []
    for name in route.path_params:
        cases += [(f"path {name}={label}", value[:URL_MAX], [], None) for label, value in CORPUS.items()]
    for name in route.query_params:
        cases += [(f"query {name}={label}", None, [(name, value[:URL_MAX])], None) for label, value in CORPUS.items()]
        cases.append((f"query {name} twice", None, [(name, "1"), (name, "2")], None))
    for name in route.form_fields:
        others = [(field, value) for field, value in _form(route, world) if field != name]
        cases += [(f"form {name}={label}", None, [], [*others, (name, value)]) for label, value in CORPUS.items()]
        cases.append((f"form {name} twice", None, [], [*others, (name, "1"), (name, "2")]))
    return cases


# Last in the module on purpose: a corpus value that happens to be valid (a note of "-1") may act, and
# the other tests want the world as built.
async def test_it_survives_the_bad_input_corpus_in_every_parameter(world, clients):
    semaphore = asyncio.Semaphore(CONCURRENCY)
    problems: list[str] = []
    sent = 0

    async def probe(route: Route, label: str, path_value: str | None, query: list, form: list | None) -> None:
        nonlocal sent
        name = label.split()[1].split("=")[0]
        url = _url(route, world, (name, path_value) if path_value is not None else None, query)
        async with semaphore:
            try:
                response = await _send(_member_for(route, clients), route.method, url, form)
            except httpx.HTTPError as exc:
                problems.append(f"{route} {label}: {type(exc).__name__}")
                return
            sent += 1
            if response.status_code >= 500:
                problems.append(f"{route} {label}: {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(probe(route, *case) for route in CHECKABLE for case in _corpus_cases(route, world)))
    assert problems == []
    assert sent >= 1000
