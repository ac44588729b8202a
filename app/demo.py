"""Demo data for a new install: two workspaces and one persona per role. Idempotent."""

from __future__ import annotations

from app.accounts import services
from app.accounts.tables import Tenant, User
from app.audit.services import SYSTEM

DEMO_PASSWORD = "coursewright-demo"
DEMO_USERS = [
    # email, name, role in "Demo Academy", role in "Northwind Training" (None: not a member)
    ("owner@demo.coursewright.dev", "Olivia Owner", "owner", None),
    ("admin@demo.coursewright.dev", "Adam Admin", "admin", "admin"),
    ("learner@demo.coursewright.dev", "Lena Learner", "learner", "learner"),
]
DEMO_TENANTS = [("Demo Academy", "demo"), ("Northwind Training", "northwind")]


async def seed_demo() -> bool:
    """Create the demo workspaces and users unless they exist; returns whether anything was created."""
    if await Tenant.exists().where(Tenant.slug == "demo"):
        return False
    tenants = [await services.create_tenant(name, slug, actor=SYSTEM) for name, slug in DEMO_TENANTS]
    for email, name, *roles in DEMO_USERS:
        user = await User.select(User.id).where(User.email == email).first()
        if user is None:
            user = await services.create_user(email, name, DEMO_PASSWORD, actor=SYSTEM, tenant_id=tenants[0]["id"])
        for tenant, role in zip(tenants, roles, strict=True):
            if role is not None:
                await services.add_membership(tenant["id"], user["id"], role, actor=SYSTEM)
    return True


def demo_logins() -> list[tuple[str, str, str]]:
    return [(email, DEMO_PASSWORD, roles[0]) for email, _name, *roles in DEMO_USERS]
