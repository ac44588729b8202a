"""A small complete world for the web-boundary tests: Acme with a published course, an enrolled learner,
a background job, audit entries and a pending invitation; Globex with an admin of its own. Built once
per module through the real app (the authoring and publishing helpers), plus a whole-database
fingerprint to prove that a refused request changed nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg

from app.accounts import services as accounts
from app.audit.services import SYSTEM, Actor
from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem, GenerationRun
from app.billing import services as billing
from app.exports.tables import PackageExport
from app.jobs.tables import BackgroundJob
from tests.conftest import DATABASE_URL, Client, Persona, make_member, make_tenant
from tests.publishing.helpers import published_course


@dataclass
class World:
    acme: dict
    globex: dict
    admin: Persona
    learner: Persona
    outsider: Persona  # an admin of Globex
    course_id: uuid.UUID
    syllabus_id: uuid.UUID
    package_id: uuid.UUID
    version: int
    run_id: uuid.UUID
    item_id: uuid.UUID
    membership_id: uuid.UUID  # the learner's membership in Acme
    job_id: uuid.UUID
    audit_entry_id: int
    invitation_id: uuid.UUID  # a pending invitation to Acme
    invitation_token: str
    export_id: uuid.UUID  # a failed HTML export of the course's version (written straight, no job)
    product_id: uuid.UUID  # a product of the course, deactivated (the course stays free for the other tests)
    purchase_id: uuid.UUID  # the learner's sandbox purchase of it (PAID)
    billing_event_id: uuid.UUID  # a FAILED Stripe event about that purchase (written straight)
    signal_id: uuid.UUID  # an open analytics signal about the course (written straight, no events)
    suggestion_id: uuid.UUID  # an open suggestion from that signal about a lesson (written straight)
    failed_regeneration_job_id: uuid.UUID  # a regeneration job of a lesson whose worker was lost (FAILED)
    retry_intent_id: uuid.UUID  # an open (PENDING, not approved) retry request of that job
    spot_check_id: uuid.UUID  # an AI spot check of the course's module 1 (through the service)
    traffic_report_id: uuid.UUID  # a stored traffic report of Acme
    resource_id: uuid.UUID  # an external resource of the course's module 1 (through the service)
    regeneration_job_id: uuid.UUID  # a PENDING regeneration job of a lesson (made by the service, never triggered)
    index: int = 1  # a lesson of the course
    module_index: int = 1


async def build_world(base_url: str) -> World:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    admin = await make_member(acme, "admin", "adam")
    learner = await make_member(acme, "learner", "lena")
    outsider = await make_member(globex, "admin", "oscar")
    client = Client(base_url)
    try:
        await client.login(admin.email)
        syllabus, package = await published_course(client)
        assert (await client.post("/admin/stats")).status_code == 303
        reader = Client(base_url)
        await reader.login(learner.email)
        assert (await reader.post(f"/learn/{syllabus['id']}/enroll")).status_code == 303
        await reader.aclose()
    finally:
        await client.aclose()
    run = await GenerationRun.select(GenerationRun.id).where(GenerationRun.course_id == syllabus["course_id"]).first()
    item = await ContentItem.select(ContentItem.id).where(ContentItem.syllabus_id == syllabus["id"]).first()
    job = await _finished_job(acme["id"])
    entry = await AuditLog.select(AuditLog.id).where(AuditLog.tenant_id == acme["id"]).first()
    export_id = await _failed_export(acme["id"], package["id"])
    product_id, purchase_id, event_id = await _sale(acme["id"], syllabus["id"], learner)
    invitation, token = await accounts.create_invitation(acme["id"], email=f"ivy-{uuid.uuid4().hex[:8]}@example.test",
                                                         role="learner", actor=SYSTEM, actor_role="owner")
    return World(
        acme=acme, globex=globex, admin=admin, learner=learner, outsider=outsider,
        course_id=syllabus["course_id"], syllabus_id=syllabus["id"], package_id=package["id"],
        version=package["version"], run_id=run["id"], item_id=item["id"], membership_id=learner.membership_id,
        job_id=job["id"], audit_entry_id=entry["id"], invitation_id=invitation["id"], invitation_token=token,
        export_id=export_id, product_id=product_id, purchase_id=purchase_id, billing_event_id=event_id,
        signal_id=await _signal(acme["id"], syllabus["id"]),
        suggestion_id=await _suggestion(acme["id"], syllabus["id"]),
        **await _retry_request(acme["id"], syllabus["id"], admin),
        **await _quality_log(acme["id"], syllabus["course_id"]),
        resource_id=await _resource(acme["id"], syllabus["course_id"]),
        regeneration_job_id=await _pending_regeneration_job(acme["id"], syllabus["id"], admin),
    )


async def _failed_export(tenant_id: uuid.UUID, package_id: uuid.UUID) -> uuid.UUID:
    export_id = uuid.uuid4()
    await PackageExport.raw(
        "INSERT INTO package_export (id, tenant_id, package_id, format, options, exporter_version, status, error, "
        "created_at, queued_at, attempt, lost_attempts) VALUES ({}, {}, {}, 'HTML', '{{}}'::jsonb, 'world', 'FAILED', "
        "'The HTML site could not be built: test world', now(), now(), 1, 0)", export_id, tenant_id, package_id)
    return export_id


async def _signal(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> uuid.UUID:
    signal_id = uuid.uuid4()
    await PackageExport.raw(
        "INSERT INTO analytics_signal (id, tenant_id, course_id, signal_type, lesson_index, severity, day, "
        "window_start, window_end, metrics, thresholds, summary, status, created_at) VALUES ({}, {}, {}, "
        "'high_drop_off', 2, 'high', current_date, current_date - 6, current_date, '{{}}'::jsonb, '{{}}'::jsonb, "
        "'Lesson 2 loses 90% (test world)', 'OPEN', now())", signal_id, tenant_id, syllabus_id)
    return signal_id


async def _retry_request(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, admin: Persona) -> dict[str, uuid.UUID]:
    """A job made by the service, taken to FAILED as the sweeper leaves a lost worker's job (no wake-up: no
    worker runs it), and a retry request of it through the service."""
    from app.regeneration import intents
    from app.regeneration import services as regeneration

    actor = Actor(admin.user_id, admin.email)
    lesson = await ContentItem.select(ContentItem.id).where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.kind == "LESSON")).first()
    job = await regeneration.create_job(tenant_id, target_id=lesson["id"], instruction={"text": "Shorter."},
                                        actor=actor)
    await PackageExport.raw(
        "UPDATE regeneration_job SET status = 'QUEUED', queued_at = now() WHERE id = {}", job["id"])
    await PackageExport.raw("UPDATE regeneration_job SET status = 'RUNNING', claimed_at = now(), locked_at = now(), "
                            "heartbeat_at = now(), attempt = 1 WHERE id = {}", job["id"])
    await PackageExport.raw("UPDATE regeneration_job SET status = 'FAILED', completed_at = now(), error = {}::jsonb "
                            "WHERE id = {}", '{"code": "worker_lost", "message": "test world"}', job["id"])
    intent = await intents.create_intent(tenant_id, job["id"], "INFRA_ERROR", "The worker was lost (test world).",
                                         actor=actor)
    return {"failed_regeneration_job_id": job["id"], "retry_intent_id": intent["id"]}


async def _pending_regeneration_job(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, admin: Persona) -> uuid.UUID:
    from app.regeneration import services as regeneration

    lesson = await ContentItem.select(ContentItem.id).where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.kind == "LESSON")).first()
    job = await regeneration.create_job(tenant_id, target_id=lesson["id"], instruction={"text": "Use an analogy."},
                                        actor=Actor(admin.user_id, admin.email))
    return job["id"]


async def _quality_log(tenant_id: uuid.UUID, course_id: uuid.UUID) -> dict[str, uuid.UUID]:
    from app.quality import spot_checks, traffic

    check = await spot_checks.create_spot_check(tenant_id, spot_checks.SpotCheckForm(
        checked_on="2026-01-05", course_id=str(course_id), module_index="1", traffic="3", checked="hints",
        observed="fine", follow_up="none"), actor=SYSTEM)
    report = await traffic.store_traffic_report(tenant_id, trigger="admin")
    return {"spot_check_id": check["id"], "traffic_report_id": report["id"]}


async def _resource(tenant_id: uuid.UUID, course_id: uuid.UUID) -> uuid.UUID:
    from app.quality import resources

    row = await resources.add_resource(tenant_id, course_id, 1, resources.ResourceForm(
        title="A vetted reference", url="https://example.org/reference", kind="ARTICLE"), actor=SYSTEM)
    return row["id"]


async def _suggestion(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> uuid.UUID:
    suggestion_id = uuid.uuid4()
    lesson = await ContentItem.select(ContentItem.id).where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.kind == "LESSON")).first()
    [signal] = await PackageExport.raw("SELECT id FROM analytics_signal WHERE course_id = {}", syllabus_id)
    await PackageExport.raw(
        "INSERT INTO content_suggestion (id, tenant_id, course_id, scope, target_id, suggestion_type, severity, "
        "message, evidence, source_signal_id, created_at, status) VALUES ({}, {}, {}, 'LESSON', {}, 'DROP_OFF', "
        "'high', 'Lesson 2 loses learners (test world)', {}::jsonb, {}, now(), 'OPEN')",
        suggestion_id, tenant_id, syllabus_id, lesson["id"], "{}", signal["id"])
    return suggestion_id


async def _sale(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, learner: Persona) -> tuple[uuid.UUID, ...]:
    """The learner buys the course in the sandbox (this process has BILLING_SANDBOX_MODE on, like the
    server); then the product is deactivated, so the course is free again for everything else."""
    product = await billing.create_product(tenant_id, syllabus_id, billing.ProductForm("World course", "19", "EUR"),
                                           actor=SYSTEM)
    checkout = await billing.start_checkout(tenant_id, learner.user_id, learner.email, product["id"],
                                            base_url="http://127.0.0.1", actor=SYSTEM)
    await billing.set_product_active(tenant_id, product["id"], False, actor=SYSTEM)
    event_id = uuid.uuid4()
    payload = '{"id": "evt_world", "type": "checkout.session.completed", "data": {"object": {}}}'
    await PackageExport.raw(
        "INSERT INTO billing_event (id, stripe_event_id, type, tenant_id, purchase_id, livemode, payload, outcome, "
        "detail, attempts, received_at, processed_at) VALUES ({}, {}, 'checkout.session.completed', {}, {}, false, "
        "{}::jsonb, 'FAILED', 'ValueError: test world', 1, now(), now())", event_id, f"evt_world_{event_id.hex}",
        tenant_id, checkout.purchase_id, payload)
    return product["id"], checkout.purchase_id, event_id


async def _finished_job(tenant_id: uuid.UUID) -> dict:
    # Wait for the stats job, so no background write lands in the middle of a fingerprint comparison.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = await BackgroundJob.select().where(BackgroundJob.tenant_id == tenant_id).first()
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError("the stats job of the test world did not finish")


# Tables whose rows change on any request, refused or not: a session slides its expiry on use (and the
# request that is refused still carries the session), and SAQ's own bookkeeping moves on its own.
VOLATILE_TABLES = {"auth_session"}
VOLATILE_PREFIXES = ("saq_",)


async def database_fingerprint() -> dict[str, tuple]:
    """Per table of the public schema: row count and the newest value of each timestamp column."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position")
        tables: dict[str, list[str]] = {}
        for row in columns:
            name = row["table_name"]
            if name in VOLATILE_TABLES or name.startswith(VOLATILE_PREFIXES):
                continue
            tables.setdefault(name, [])
            if row["data_type"].startswith("timestamp"):
                tables[name].append(row["column_name"])
        parts = []
        for name, stamps in tables.items():
            newest = "".join(f', max("{column}")' for column in stamps)
            parts.append(f"SELECT '{name}' AS t, row(count(*){newest})::text AS f FROM \"{name}\"")
        rows = await conn.fetch(" UNION ALL ".join(parts))
        return {row["t"]: row["f"] for row in rows}
    finally:
        await conn.close()


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
