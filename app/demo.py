"""Demo data for a new install: two workspaces, one persona per role, and two finished example courses
drafted by the mock LLM through the real pipeline (queue, workers, review) and published: a free one with
the demo learner enrolled, and a paid one on sale in the store (bought in sandbox mode, no card charged).
Idempotent and resumable: each start completes what is missing."""

from __future__ import annotations

import asyncio
import time
import uuid

from app.accounts import services
from app.accounts.tables import Membership, Tenant, User
from app.analytics import demo as analytics_demo
from app.audit.services import SYSTEM, Actor
from app.authoring import services as authoring
from app.authoring.tables import Course, GenerationRun, RunKind, RunStatus, Syllabus, SyllabusStatus
from app.billing import services as billing
from app.billing.tables import Product
from app.player import services as player
from app.player.tables import Enrollment
from app.publishing import services as publishing
from app.queue import close_queue, connect_queues
from app.settings import get_settings

DEMO_PASSWORD = "coursewright-demo"
MOCK = "mock"
DEMO_USERS = [
    # email, name, role in "Demo Academy", role in "Northwind Training" (None: not a member)
    ("owner@demo.coursewright.dev", "Olivia Owner", "owner", None),
    ("admin@demo.coursewright.dev", "Adam Admin", "admin", "admin"),
    ("learner@demo.coursewright.dev", "Lena Learner", "learner", "learner"),
]
DEMO_TENANTS = [("Demo Academy", "demo"), ("Northwind Training", "northwind")]
# The free course: the demo learner is enrolled in it.
DEMO_BRIEF = {
    "title": "Python for Data Analysis",
    "audience": "analysts who know spreadsheets and want to automate their work",
    "level": "beginner",
    "time_budget_hours": 6,
    "teaching_style": "practical",
    "constraints": ["hands-on labs", "no prior experience"],
}
# The paid course: on sale in the demo workspace's store, the demo learner not enrolled. Two hours make it four
# lessons, so it adds a few seconds to a first start.
PAID_BRIEF = {
    "title": "SQL for Spreadsheet Users",
    "audience": "analysts who live in spreadsheets and want to query their data directly",
    "level": "beginner",
    "time_budget_hours": 2,
    "teaching_style": "practical",
    "constraints": ["hands-on labs"],
}
PAID_PRICE = ("49.00", "EUR")
# Vetted external resources of each demo module (module index -> title, url, kind), so the demo courses meet
# the coverage audit's baselines and `coursewright launch-gate` passes on a fresh install. Public reference
# documentation only; a person picked them (app/quality/resources.py: the model never invents links).
DEMO_RESOURCES = {
    DEMO_BRIEF["title"]: {
        1: ("The Python tutorial", "https://docs.python.org/3/tutorial/index.html", "DOCUMENTATION"),
        2: ("pandas: getting started", "https://pandas.pydata.org/docs/getting_started/index.html",
            "DOCUMENTATION"),
        3: ("pandas user guide", "https://pandas.pydata.org/docs/user_guide/index.html", "DOCUMENTATION"),
    },
    PAID_BRIEF["title"]: {
        1: ("PostgreSQL tutorial: the SQL language", "https://www.postgresql.org/docs/current/tutorial-sql.html",
            "DOCUMENTATION"),
    },
}


async def seed_demo() -> bool:
    """Create whatever of the demo data is missing; returns whether anything was created. Every step checks
    what is there first, so a start that was cut short (killed, crashed) is finished by the next one."""
    created = False
    tenants = []
    for name, slug in DEMO_TENANTS:
        tenant = await Tenant.select().where(Tenant.slug == slug).first()
        if tenant is None:
            tenant, created = await services.create_tenant(name, slug, actor=SYSTEM), True
        tenants.append(tenant)
    users = {}
    for email, name, *roles in DEMO_USERS:
        user = await User.select(User.id).where(User.email == email).first()
        if user is None:
            user = await services.create_user(email, name, DEMO_PASSWORD, actor=SYSTEM, tenant_id=tenants[0]["id"])
            created = True
        users[email] = user
        for tenant, role in zip(tenants, roles, strict=True):
            if role is not None and not await Membership.exists().where(
                    (Membership.tenant_id == tenant["id"]) & (Membership.user_id == user["id"])):
                await services.add_membership(tenant["id"], user["id"], role, actor=SYSTEM)
                created = True
    admin_email, learner_email = DEMO_USERS[1][0], DEMO_USERS[2][0]
    admin = Actor(users[admin_email]["id"], admin_email)
    learner = Actor(users[learner_email]["id"], learner_email)
    created = await seed_demo_course(tenants[0]["id"], admin, learner) or created
    for brief in (DEMO_BRIEF, PAID_BRIEF):  # installs seeded before resources existed get them too
        course = await Course.select(Course.id).where(
            (Course.tenant_id == tenants[0]["id"]) & (Course.title == brief["title"])).first()
        if course and await _approved_syllabus(course["id"]):
            created = await seed_demo_resources(tenants[0]["id"], course["id"], brief["title"], admin) or created
    # Three weeks of simulated learners for the analytics dashboard (app/analytics/demo.py).
    syllabus_id = await analytics_demo.demo_syllabus(tenants[0]["id"], DEMO_BRIEF["title"])
    return await analytics_demo.seed_demo_analytics(tenants[0]["id"], syllabus_id) or created


async def seed_demo_course(tenant_id: uuid.UUID, admin: Actor, learner: Actor) -> bool:
    """Brief -> syllabus -> approval -> content -> approval -> version 1, exactly as an admin would do it, for
    both demo courses: the free one with the learner enrolled, and the paid one on sale with the learner NOT
    enrolled (so a new user sees the store). Always the mock LLM, whatever LLM_PROVIDER says (it is demo data,
    and a first start must not spend money or fail on a provider). Returns whether it had anything to do."""
    from tasks.worker import running_workers

    free, paid = await _published_demo(tenant_id, DEMO_BRIEF), await _published_demo(tenant_id, PAID_BRIEF)
    enrolled = free is not None and await Enrollment.exists().where(
        (Enrollment.user_id == learner.user_id) & (Enrollment.syllabus_id == free))
    # Any product, active or not: an admin who stopped selling the demo course is not overruled by a restart.
    on_sale = paid is not None and await Product.exists().where(Product.syllabus_id == paid)
    if enrolled and on_sale:
        return False
    await connect_queues()
    try:
        async with running_workers(get_settings()):
            # Both courses at once: the workers draft them side by side, which keeps a first start short.
            free, paid = await asyncio.gather(*(_publish_demo(tenant_id, brief, admin)
                                                for brief in (DEMO_BRIEF, PAID_BRIEF)))
    finally:
        await close_queue()
    if not enrolled:
        await player.enroll(tenant_id, learner.user_id, free, actor=learner)
    if not on_sale:
        await billing.create_product(tenant_id, paid, billing.ProductForm(PAID_BRIEF["title"], *PAID_PRICE),
                                     actor=admin)
    return True


async def _published_demo(tenant_id: uuid.UUID, brief: dict) -> uuid.UUID | None:
    """The syllabus of a demo course once it has a published version, else None."""
    course = await Course.select().where((Course.tenant_id == tenant_id) & (Course.title == brief["title"])).first()
    syllabus = await _approved_syllabus(course["id"]) if course else None
    if syllabus and await publishing.list_versions(tenant_id, syllabus["id"]):
        return syllabus["id"]
    return None


async def _publish_demo(tenant_id: uuid.UUID, brief: dict, admin: Actor) -> uuid.UUID:
    course = await Course.select(Course.id).where(
        (Course.tenant_id == tenant_id) & (Course.title == brief["title"])).first()
    if course is None:
        run = await authoring.request_course(tenant_id, authoring.parse_brief(brief), actor=admin, llm_provider=MOCK)
        course = {"id": run["course_id"]}
    syllabus_id = await _demo_syllabus(tenant_id, course["id"], admin)
    if await publishing.list_versions(tenant_id, syllabus_id):
        return syllabus_id  # published by an earlier start
    await _demo_content(tenant_id, syllabus_id, admin)
    await seed_demo_resources(tenant_id, course["id"], brief["title"], admin)  # before v1, so it carries them
    await publishing.publish_package(tenant_id, syllabus_id, actor=admin)
    return syllabus_id


async def _demo_syllabus(tenant_id: uuid.UUID, course_id: uuid.UUID, admin: Actor) -> uuid.UUID:
    """The course's approved syllabus, after finishing, retrying or approving what an earlier start left."""
    if (approved := await _approved_syllabus(course_id)) is not None:
        return approved["id"]
    run = await GenerationRun.select().where(
        (GenerationRun.course_id == course_id) & (GenerationRun.kind == RunKind.SYLLABUS.value)
    ).order_by(GenerationRun.created_at, ascending=False).first()
    run = await _until_finished(run)
    if run["status"] == RunStatus.FAILED:
        run = await _until_finished(await authoring.retry_syllabus_run(tenant_id, run["id"], actor=admin))
    if run["status"] != RunStatus.SUCCEEDED:
        raise RuntimeError(f"demo syllabus run {run['id']} ended {run['status']}: {run['error']}")
    await authoring.approve_syllabus(tenant_id, run["syllabus_id"], "Demo course", actor=admin)
    return run["syllabus_id"]


async def _demo_content(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, admin: Actor) -> None:
    run = await authoring.content_run_for(syllabus_id)
    if run is None:
        run = await authoring.request_content(tenant_id, syllabus_id, actor=admin, llm_provider=MOCK)
    run = await _until_finished(run)
    if run["failed"]:
        await _until_finished(await authoring.regenerate_failed(tenant_id, run["id"], actor=admin))
        run = await _until_finished(run)
    if run["status"] != RunStatus.SUCCEEDED:
        raise RuntimeError(f"demo content run {run['id']} ended {run['status']}: {run['error']}")
    document = authoring.syllabus_doc(await authoring.get_syllabus(tenant_id, syllabus_id))
    for module in document.modules:
        await authoring.approve_module(tenant_id, syllabus_id, module.index, "Demo course", actor=admin)


async def seed_demo_resources(tenant_id: uuid.UUID, course_id: uuid.UUID, title: str, admin: Actor) -> bool:
    """The demo course's vetted links, for the modules that have none yet (an admin who removed one and added
    another is not overruled)."""
    from app.quality import resources

    live = await resources.live_resources(tenant_id, course_id)
    added = False
    for module, (name, url, kind) in DEMO_RESOURCES.get(title, {}).items():
        if not live.get(module):
            form = resources.ResourceForm(title=name, url=url, kind=kind)
            await resources.add_resource(tenant_id, course_id, module, form, actor=admin)
            added = True
    return added


async def _approved_syllabus(course_id: uuid.UUID) -> dict | None:
    return await Syllabus.select(Syllabus.id).where(
        (Syllabus.course_id == course_id) & (Syllabus.status == SyllabusStatus.APPROVED.value)).first()


async def _until_finished(run: dict, timeout: float = 600) -> dict:
    """Wait while the workers of this process (or any other) finish the generation run. An earlier start
    that was killed may have left items whose lease must expire first (GENERATION_LEASE_SECONDS)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await GenerationRun.select().where(GenerationRun.id == run["id"]).first()
        if row["status"] not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return row
        await asyncio.sleep(0.05)
    raise TimeoutError(f"demo generation run {run['id']} did not finish in {timeout} s")


def demo_logins() -> list[tuple[str, str, str]]:
    return [(email, DEMO_PASSWORD, roles[0]) for email, _name, *roles in DEMO_USERS]
