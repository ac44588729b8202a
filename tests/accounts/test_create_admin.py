"""`coursewright create-admin` on people who already exist (the first-owner case is in test_cli.py): a
learner of the workspace is promoted to admin, an existing admin or owner keeps their role, someone from
another workspace gets an admin membership here, and nothing is duplicated or demoted. Bad input is
refused with the service's message; a workspace left without an owner by a failed run gets one next time."""

from __future__ import annotations

import subprocess

from argon2 import PasswordHasher

from app.accounts.tables import Membership, Tenant, User
from app.audit.tables import AuditLog
from tests.conftest import PASSWORD, run_cli


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli({}, "create-admin", *args)


def _create_admin(email: str, tenant: dict) -> subprocess.CompletedProcess:
    return _cli("--email", email, "--name", "Ignored Name", "--tenant", tenant["slug"],
                "--password", "another-password")


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





async def test_it_refuses_a_bad_slug_email_or_password_with_a_clear_message_and_creates_nothing():
    cases = [
        (("--email", "slug@bad.test", "--name", "Sam", "--tenant", "Not A Slug!", "--password", PASSWORD),
         "Error: Workspace slugs use lowercase letters, digits and dashes."),
        (("--email", "not-an-email", "--name", "Sam", "--tenant", "cli-bad-email", "--password", PASSWORD),
         "Error: Enter a valid email address."),
        (("--email", "long@bad.test", "--name", "Sam", "--tenant", "cli-long-password", "--password", "x" * 1025),
         "Error: Passwords can have at most 1024 characters."),
        (("--email", "blank@bad.test", "--name", "   ", "--tenant", "cli-blank-name", "--password", PASSWORD),
         "Error: Enter the person's name."),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.returncode == 1 and message in result.stderr, (args[1], result.stderr[-500:])
        assert "Traceback" not in result.stderr
    emails = ["slug@bad.test", "not-an-email", "long@bad.test", "blank@bad.test"]
    assert await User.count().where(User.email.is_in(emails)) == 0


async def test_a_run_that_failed_on_the_person_still_lets_the_next_run_make_the_owner():
    failed = _cli("--email", "not-an-email", "--name", "Rita", "--tenant", "cli-retried", "--password", PASSWORD)
    assert failed.returncode == 1
    fixed = _cli("--email", "rita@retried.test", "--name", "Rita", "--tenant", "cli-retried", "--password", PASSWORD)
    assert fixed.returncode == 0 and "rita@retried.test is owner of workspace cli-retried." in fixed.stdout
    tenant = await Tenant.select().where(Tenant.slug == "cli-retried").first()
    user = await User.select(User.id).where(User.email == "rita@retried.test").first()
    assert await _role(user["id"], tenant) == ["owner"]
    second = _cli("--email", "sam@retried.test", "--name", "Sam", "--tenant", "cli-retried", "--password", PASSWORD)
    assert second.returncode == 0 and "is admin of workspace cli-retried." in second.stdout

