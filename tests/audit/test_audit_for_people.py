"""The audit log for people: actions and entities in words, each entry linked to the page of what it names
(when it has one), and filters that offer only what this workspace's log holds."""

from __future__ import annotations

import re

from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, audit
from app.audit.tables import AuditLog
from app.audit.words import ACTION_WORDS, ENTITY_WORDS, action_words
from app.authoring.tables import ContentItem
from tests.publishing.helpers import published_course


def test_it_has_words_for_every_action():
    missing = [action.value for action in AuditAction if action not in ACTION_WORDS]
    assert missing == [], "add words for these actions to app/audit/words.py"
    words = list(ACTION_WORDS.values())
    assert len(set(words)) == len(words)  # two actions never read the same
    assert all(w[0].isupper() and "_" not in w and w != w.upper() for w in words)
    assert action_words("SYLLABUS_APPROVED") == "Syllabus approved"
    assert action_words("CONTENT_EDITED_BY_HAND") == "Content edited by hand"
    assert action_words("SOMETHING_RETIRED") == "Something retired"  # an old row still reads as words


def test_it_has_words_for_every_entity_type_the_code_writes():
    import pathlib

    written = set()
    for path in pathlib.Path("app").rglob("*.py"):
        written |= set(re.findall(r'entity_type="([a-z_]+)"', path.read_text()))
    assert written and written <= set(ENTITY_WORDS)


def _cells(html: str, action: str) -> list[str]:
    return [" ".join(m.split()) for m in re.findall(
        rf'<tr id="audit-\d+">((?:(?!</tr>).)*title="{action}"(?:(?!</tr>).)*)</tr>', html, re.DOTALL)]


async def test_it_links_each_entry_to_the_page_of_what_it_names(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.post(f"/learn/{syllabus['id']}/enroll")).status_code == 303
    await client.post("/admin/invitations", {"email": "ivy@example.test", "role": "learner"})
    await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"})
    item = await ContentItem.select(ContentItem.id).where(ContentItem.syllabus_id == syllabus["id"]).first()
    expected = {
        "COURSE_REQUESTED": f'href="/admin/courses/{syllabus["course_id"]}"',
        "SYLLABUS_APPROVED": f'href="/admin/syllabi/{syllabus["id"]}"',
        "CONTENT_APPROVED": 'href="/admin/items/',
        "PACKAGE_PUBLISHED": f'href="/admin/packages/{syllabus["id"]}/v/{package["version"]}"',
        "ENROLLMENT_CREATED": f'href="/admin/packages/{syllabus["id"]}/learners?q=',
        "ROLE_CHANGED": f'href="/admin/members/{personas.learner.membership_id}"',
        "USER_LOGIN": 'href="/admin/members/',
        "INVITATION_CREATED": 'href="/admin/members#invitation-',
    }
    for action, href in expected.items():
        page = await client.get("/admin/audit", params={"action": action})
        cells = _cells(page.text, action)
        assert cells and href in cells[0], (action, cells[:1])
        target = re.search(r'<a href="([^"]+)" class="entity-link">', cells[0]).group(1)
        assert (await client.get(target)).status_code == 200, (action, target)
    one_item = await client.get("/admin/audit", params={"entity_id": str(item["id"])})
    assert f'href="/admin/items/{item["id"]}" class="entity-link">Content item</a>' in one_item.text
    # A workspace has no page of its own: the entry names it, without a link.
    tenant = await client.get("/admin/audit", params={"entity_type": "tenant"})
    assert ">Workspace" in tenant.text and 'class="entity-link">Workspace' not in tenant.text


async def test_it_drops_the_link_when_the_entity_is_gone(client, personas):
    await client.login(personas.owner.email)
    response = await client.post(f"/admin/members/{personas.learner.membership_id}/remove")
    assert response.status_code in (200, 303)
    removed = await AuditLog.select(AuditLog.id).where(
        (AuditLog.action == "MEMBERSHIP_REMOVED") & (AuditLog.entity_id == str(personas.learner.membership_id))).first()
    assert removed is not None
    page = await client.get("/admin/audit", params={"action": "MEMBERSHIP_REMOVED"})
    assert f"/admin/members/{personas.learner.membership_id}" not in page.text
    entry = await client.get(f"/admin/audit/{removed['id']}")
    assert "<h1>Member removed</h1>" in entry.text and "it is no longer in this workspace" in entry.text


async def test_it_shows_an_entry_in_words_with_its_link(client, personas):
    await client.login(personas.admin.email)
    await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"})
    row = await AuditLog.select(AuditLog.id).where(
        (AuditLog.action == "ROLE_CHANGED") & (AuditLog.tenant_id == personas.acme["id"])).first()
    entry = await client.get(f"/admin/audit/{row['id']}")
    assert "<h1>Role changed</h1>" in entry.text
    assert f'<a href="/admin/members/{personas.learner.membership_id}" class="entity-link">Member</a>' in entry.text


async def test_it_offers_only_the_actions_of_this_workspace_in_words(client, personas):
    await audit(AuditAction.EXPORT_SCORM, actor=SYSTEM, tenant_id=personas.globex["id"], entity_type="course")
    await client.login(personas.admin.email)
    page = await client.get("/admin/audit")
    select = re.search(r'<select name="action">(.*?)</select>', page.text, re.DOTALL).group(1)
    offered = re.findall(r'<option value="([A-Z_]+)"[^>]*>([^<]+)</option>', select)
    present = {r["action"] for r in await AuditLog.select(AuditLog.action).where(
        AuditLog.tenant_id == personas.acme["id"])}
    assert {code for code, _ in offered} == present
    assert all(words == ACTION_WORDS[AuditAction(code)] for code, words in offered)
    assert [words for _, words in offered] == sorted(words for _, words in offered)
    assert "EXPORT_SCORM" not in select  # only in Globex's log
    types = re.search(r'<select name="entity_type">(.*?)</select>', page.text, re.DOTALL).group(1)
    assert '<option value="membership" >Member</option>' in types
    # A valid action that this log does not hold yet still shows as chosen (the form says what it filters).
    chosen = await client.get("/admin/audit", params={"action": "PACKAGE_ARCHIVED"})
    assert '<option value="PACKAGE_ARCHIVED" selected>Course version archived</option>' in chosen.text
    assert "No audit entries match these filters." in chosen.text


async def test_it_says_what_was_wrong_with_a_filter_above_the_filters(client, personas):
    await client.login(personas.admin.email)
    for params, words in (
        ({"action": "DROP_TABLES"}, "Unknown action &#39;DROP_TABLES&#39;: choose one from the list."),
        ({"date_to": "31/01/2026"}, "To must be a date like 2026-01-31."),
    ):
        response = await client.get("/admin/audit", params=params)
        assert response.status_code == 400
        assert "<h1>Audit log</h1>" in response.text  # the log's own page, not an error page
        assert f'<p class="field-error" role="alert" id="audit-filter-error">{words}</p>' in response.text
