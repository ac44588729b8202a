"""Demo data for a new install: two workspaces, one persona per role, and a finished example course
drafted by the mock LLM through the real pipeline (queue, workers, review), published, with the demo
learner enrolled. Idempotent."""

from __future__ import annotations

import asyncio
import time
import uuid

from app.accounts import services
from app.accounts.tables import Tenant, User
from app.audit.services import SYSTEM, Actor
from app.authoring import services as authoring
from app.authoring.tables import GenerationRun, RunStatus
from app.player import services as player
from app.publishing import services as publishing
from app.queue import close_queue, connect_queues
from app.settings import get_settings

DEMO_PASSWORD = "coursewright-demo"
DEMO_USERS = [
    # email, name, role in "Demo Academy", role in "Northwind Training" (None: not a member)
    ("owner@demo.coursewright.dev", "Olivia Owner", "owner", None),
    ("admin@demo.coursewright.dev", "Adam Admin", "admin", "admin"),
    ("learner@demo.coursewright.dev", "Lena Learner", "learner", "learner"),
]
DEMO_TENANTS = [("Demo Academy", "demo"), ("Northwind Training", "northwind")]
DEMO_BRIEF = {
    "title": "Python for Data Analysis",
    "audience": "analysts who know spreadsheets and want to automate their work",
    "level": "beginner",
    "time_budget_hours": 6,
    "teaching_style": "practical",
    "constraints": ["hands-on labs", "no prior experience"],
}


async def seed_demo() -> bool:
    """Create the demo workspaces and users unless they exist; returns whether anything was created."""
    if await Tenant.exists().where(Tenant.slug == "demo"):
        return False
    tenants = [await services.create_tenant(name, slug, actor=SYSTEM) for name, slug in DEMO_TENANTS]
    users = {}
    for email, name, *roles in DEMO_USERS:
        user = await User.select(User.id).where(User.email == email).first()
        if user is None:
            user = await services.create_user(email, name, DEMO_PASSWORD, actor=SYSTEM, tenant_id=tenants[0]["id"])
        users[email] = user
        for tenant, role in zip(tenants, roles, strict=True):
            if role is not None:
                await services.add_membership(tenant["id"], user["id"], role, actor=SYSTEM)
    admin_email, learner_email = DEMO_USERS[1][0], DEMO_USERS[2][0]
    syllabus_id = await seed_demo_course(tenants[0]["id"], Actor(users[admin_email]["id"], admin_email))
    await publishing.publish_package(tenants[0]["id"], syllabus_id, actor=Actor(users[admin_email]["id"], admin_email))
    learner = Actor(users[learner_email]["id"], learner_email)
    await player.enroll(tenants[0]["id"], learner.user_id, syllabus_id, actor=learner)
    return True


async def seed_demo_course(tenant_id: uuid.UUID, admin: Actor) -> uuid.UUID:
    """Brief -> syllabus -> approval -> content -> approval, exactly as an admin would do it."""
    brief = authoring.parse_brief(DEMO_BRIEF)
    await connect_queues()
    try:
        run = await _until_finished(await authoring.request_course(tenant_id, brief, actor=admin))
        syllabus_id = run["syllabus_id"]
        await authoring.approve_syllabus(tenant_id, syllabus_id, "Demo course", actor=admin)
        await _until_finished(await authoring.request_content(tenant_id, syllabus_id, actor=admin))
        document = authoring.syllabus_doc(await authoring.get_syllabus(tenant_id, syllabus_id))
        for module in document.modules:
            await authoring.approve_module(tenant_id, syllabus_id, module.index, "Demo course", actor=admin)
    finally:
        await close_queue()
    return syllabus_id


async def _until_finished(run: dict, timeout: float = 300) -> dict:
    """Run the real workers in this process until the generation run finishes."""
    from tasks.worker import running_workers

    deadline = time.monotonic() + timeout
    async with running_workers(get_settings()):
        while time.monotonic() < deadline:
            row = await GenerationRun.select().where(GenerationRun.id == run["id"]).first()
            if row["status"] not in (RunStatus.QUEUED, RunStatus.RUNNING):
                if row["status"] != RunStatus.SUCCEEDED:
                    raise RuntimeError(f"demo generation run {run['id']} ended {row['status']}: {row['error']}")
                return row
            await asyncio.sleep(0.05)
    raise TimeoutError(f"demo generation run {run['id']} did not finish in {timeout} s")


def demo_logins() -> list[tuple[str, str, str]]:
    return [(email, DEMO_PASSWORD, roles[0]) for email, _name, *roles in DEMO_USERS]
