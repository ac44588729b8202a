"""`coursewright create-admin` on people who already exist (the first-owner case is in test_cli.py): a
learner of the workspace is promoted to admin, an existing admin or owner keeps their role, someone from
another workspace gets an admin membership here, and nothing is duplicated or demoted."""

from __future__ import annotations

import os
import subprocess

from argon2 import PasswordHasher

from app.accounts.tables import Membership, User
from app.audit.tables import AuditLog
from tests.conftest import BIN, PASSWORD, ROOT


def _create_admin(email: str, tenant: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "coursewright"), "create-admin", "--email", email, "--name", "Ignored Name",
                           "--tenant", tenant["slug"], "--password", "another-password"], env=dict(os.environ),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


async def _role(persona_or_user_id, tenant: dict) -> list[str]:
    rows = await Membership.select(Membership.role).where(
        (Membership.user_id == persona_or_user_id) & (Membership.tenant_id == tenant["id"]))
    return [row["role"] for row in rows]


async def test_it_promotes_a_learner_of_the_workspace_to_admin(personas):
    result = _create_admin(personas.learner.email.upper(), personas.acme)
    assert result.returncode == 0, result.stderr
    assert f"is admin of workspace {personas.acme['slug']}" in result.stdout
    assert await _role(personas.learner.user_id, personas.acme) == ["admin"]
    audit = await AuditLog.select().where((AuditLog.action == "ROLE_CHANGED")
                                          & (AuditLog.entity_id == str(personas.learner.membership_id))).first()
    assert audit is not None and '"to": "admin"' in audit["metadata"]
    # The account itself is untouched: same name, same password.
    user = await User.select(User.name).where(User.id == personas.learner.user_id).first()
    assert user["name"] == "Lena"


async def test_it_leaves_an_owner_and_an_admin_as_they_are(personas):
    for persona, role in ((personas.owner, "owner"), (personas.admin, "admin")):
        result = _create_admin(persona.email, personas.acme)
        assert result.returncode == 0, result.stderr
        assert f"is {role} of workspace {personas.acme['slug']}" in result.stdout
        assert await _role(persona.user_id, personas.acme) == [role]
    assert await Membership.count().where(Membership.tenant_id == personas.acme["id"]) == 3


async def test_it_makes_an_account_of_another_workspace_an_admin_here_too(personas):
    result = _create_admin(personas.outsider.email, personas.acme)
    assert result.returncode == 0, result.stderr
    assert await _role(personas.outsider.user_id, personas.acme) == ["admin"]
    assert await _role(personas.outsider.user_id, personas.globex) == ["admin"]
    assert await User.count().where(User.email == personas.outsider.email) == 1
    # The existing password stays: the one given on the command line is only for a new account.
    hashed = await User.select(User.password_hash).where(User.id == personas.outsider.user_id).first()
    assert PasswordHasher().verify(hashed["password_hash"], PASSWORD)
