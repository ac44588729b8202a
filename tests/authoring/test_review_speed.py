"""Review at speed (issue 9, item 4): the queue opens on what waits for review and pages through it 50 at a
time keeping its filters; ticked drafts are approved or rejected in bulk, each through the one transition
function with its own audit row; bad bulk input changes nothing; "Approve and next" walks a course's
drafts in queue order and returns to the queue when none is left."""

from __future__ import annotations

import re
import uuid
from html import unescape

import msgspec

from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem, GenerationRun
from app.llm.prompts import load_prompt
from tests.authoring.helpers import approved_syllabus, utcnow

LESSON = msgspec.json.encode(load_prompt("lesson").example_output).decode()


async def _drafts(syllabus: dict, tenant_id: uuid.UUID, count: int, per_module: int = 10) -> list[dict]:
    """`count` lesson drafts of an approved syllabus, as a finished content run leaves them, in queue order
    (module 1 lessons 1-10, module 2 ...)."""
    run = (await GenerationRun.insert(GenerationRun(
        tenant_id=tenant_id, course_id=syllabus["course_id"], syllabus_id=syllabus["id"], kind="CONTENT",
        status="SUCCEEDED", total=count, done=count, started_at=utcnow(), finished_at=utcnow(),
    )).returning(GenerationRun.id))[0]
    rows = [ContentItem(
        tenant_id=tenant_id, syllabus_id=syllabus["id"], run_id=run["id"], kind="LESSON",
        module_index=n // per_module + 1, lesson_index=n % per_module + 1,
        title=f"Lesson {n // per_module + 1}.{n % per_module + 1}", status="DRAFT", content=LESSON,
        content_hash=f"{n:064x}", generated_at=utcnow(),
    ) for n in range(count)]
    inserted = await ContentItem.insert(*rows).returning(ContentItem.id)
    return await ContentItem.select().where(ContentItem.id.is_in([row["id"] for row in inserted])).order_by(
        ContentItem.module_index).order_by(ContentItem.lesson_index)


async def _statuses(items: list[dict]) -> list[str]:
    rows = await ContentItem.select(ContentItem.id, ContentItem.status).where(
        ContentItem.id.is_in([item["id"] for item in items]))
    by_id = {row["id"]: row["status"] for row in rows}
    return [by_id[item["id"]] for item in items]


async def _audit_rows(items: list[dict], action: str) -> list[dict]:
    return await AuditLog.select().where((AuditLog.action == action)
                                         & AuditLog.entity_id.is_in([str(item["id"]) for item in items]))


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="item-([0-9a-f-]{36})"', html)


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


async def _flash(client) -> str:
    """The page after a redirect, as text: where the flash message shows."""
    return _text((await client.get("/admin/review", params={"status": "ALL"})).text)


async def test_it_opens_the_queue_on_items_waiting_for_review(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    items = await _drafts(syllabus, personas.acme["id"], 5)
    assert (await client.post(f"/admin/items/{items[0]['id']}/approve", {"note": ""})).status_code == 303

    queue = await client.get("/admin/review", params={"syllabus": str(syllabus["id"])})
    assert queue.status_code == 200
    assert _row_ids(queue.text) == [str(item["id"]) for item in items[1:]]
    assert re.search(r'<option value="DRAFT" selected>Waiting for review \(4\)</option>', queue.text)
    assert '<option value="ALL" >All (5)</option>' in queue.text
    assert "Showing 1–4 of 4" in queue.text
    everything = await client.get("/admin/review", params={"syllabus": str(syllabus["id"]), "status": "ALL"})
    assert _row_ids(everything.text) == [str(item["id"]) for item in items]
    approved = await client.get("/admin/review", params={"syllabus": str(syllabus["id"]), "status": "APPROVED"})
    assert _row_ids(approved.text) == [str(items[0]["id"])]
    # The status shows as words: no enum codes in the table or the filter.
    assert ">DRAFT<" not in queue.text and "waiting for review" in queue.text


async def test_it_pages_through_the_queue_fifty_at_a_time_keeping_the_filters(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    items = await _drafts(syllabus, personas.acme["id"], 60)
    params = {"syllabus": str(syllabus["id"]), "kind": "LESSON"}

    first = await client.get("/admin/review", params=params)
    assert _row_ids(first.text) == [str(item["id"]) for item in items[:50]]
    assert "Showing 1–50 of 60" in first.text
    next_link = f"/admin/review?syllabus={syllabus['id']}&amp;module=&amp;kind=LESSON&amp;status=DRAFT&amp;page=2"
    assert f'href="{next_link}"' in first.text and 'rel="prev"' not in first.text

    second = await client.get("/admin/review", params={**params, "page": "2"})
    assert _row_ids(second.text) == [str(item["id"]) for item in items[50:]]
    assert "Showing 51–60 of 60" in second.text and 'rel="next"' not in second.text
    assert 'page=1"' in second.text and 'rel="prev"' in second.text
    # The bulk form carries the filters and the page, so its answer shows the same page again.
    assert f'name="syllabus" value="{syllabus["id"]}"' in second.text and 'name="page" value="2"' in second.text

    # A page past the end shows the last one; HTMX gets only the swappable partial.
    beyond = await client.get("/admin/review", params={**params, "page": "99"}, headers={"HX-Request": "true"})
    assert beyond.status_code == 200 and "<html" not in beyond.text
    assert 'id="review-table"' in beyond.text
    assert _row_ids(beyond.text) == [str(item["id"]) for item in items[50:]]
    # Nothing waiting in a module: an empty state that offers every item instead.
    empty = await client.get("/admin/review", params={**params, "module": "9"})
    assert "Nothing is waiting for review here." in _text(empty.text)
    assert (await client.get("/admin/review", params={**params, "page": "0"})).status_code == 400


async def test_it_approves_the_ticked_items_each_with_its_own_audit_row(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    items = await _drafts(syllabus, personas.acme["id"], 15)
    chosen = items[:12]
    response = await client.post("/admin/review/bulk", {
        "action": "approve", "item_ids": [str(item["id"]) for item in chosen], "note": "Checked against the handbook",
        "syllabus": str(syllabus["id"]), "module": "", "kind": "", "status": "DRAFT", "page": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/review?syllabus={syllabus['id']}&module=&kind=&status=DRAFT&page=1"
    assert await _statuses(items) == ["APPROVED"] * 12 + ["DRAFT"] * 3
    rows = await ContentItem.select().where(ContentItem.id.is_in([item["id"] for item in chosen]))
    assert {(row["approved_by"], row["approval_note"]) for row in rows} == {
        (personas.admin.user_id, "Checked against the handbook")}
    audit = await _audit_rows(chosen, "CONTENT_APPROVED")
    assert sorted(row["entity_id"] for row in audit) == sorted(str(item["id"]) for item in chosen)
    assert "Approved 12." in await _flash(client)


async def test_it_skips_items_that_changed_meanwhile_and_says_which(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    items = await _drafts(syllabus, personas.acme["id"], 3)
    assert (await client.post(f"/admin/items/{items[1]['id']}/approve", {"note": ""})).status_code == 303
    response = await client.post("/admin/review/bulk", {
        "action": "approve", "item_ids": [str(item["id"]) for item in items]}, htmx=True)
    # htmx gets the refreshed queue with the outcome above it.
    assert response.status_code == 200 and 'id="review-table"' in response.text
    assert f"Approved 2; 1 had already changed: {items[1]['title']}." in _text(response.text)
    assert await _statuses(items) == ["APPROVED"] * 3
    assert len(await _audit_rows(items, "CONTENT_APPROVED")) == 3  # one each, none twice


async def test_it_needs_one_reason_to_reject_in_bulk(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    items = await _drafts(syllabus, personas.acme["id"], 4)
    ids = [str(item["id"]) for item in items[:3]]
    refused = await client.post("/admin/review/bulk", {"action": "reject", "item_ids": ids, "note": "  ",
                                                       "syllabus": str(syllabus["id"])})
    assert refused.status_code == 400
    # The message is inline above the table, in the bulk form, and the ticks are kept.
    assert re.search(r'<p id="bulk-error" class="form-error" role="alert" >Rejecting needs a reason', refused.text)
    assert refused.text.count("checked>") == 3
    assert await _statuses(items) == ["DRAFT"] * 4
    assert await _audit_rows(items, "CONTENT_REJECTED") == []

    done = await client.post("/admin/review/bulk", {"action": "reject", "item_ids": ids,
                                                    "note": "Too abstract for designers"})
    assert done.status_code == 303
    assert await _statuses(items) == ["REJECTED"] * 3 + ["DRAFT"]
    rows = await ContentItem.select().where(ContentItem.id.is_in([item["id"] for item in items[:3]]))
    assert {row["rejection_reason"] for row in rows} == {"Too abstract for designers"}
    assert len(await _audit_rows(items, "CONTENT_REJECTED")) == 3
    assert "Rejected 3." in await _flash(client)


async def test_it_refuses_bad_bulk_input_and_changes_nothing(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    items = await _drafts(syllabus, personas.acme["id"], 3)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    foreign_syllabus = await approved_syllabus(outsider, title="Globex onboarding for new hires")
    [foreign] = await _drafts(foreign_syllabus, personas.globex["id"], 1)
    ids = [str(item["id"]) for item in items]
    cases = [
        ({"action": "publish", "item_ids": ids}, "Choose “Approve selected” or “Reject selected”."),
        ({"action": "approve"}, "Select the items to approve first"),
        ({"action": "approve", "item_ids": [*ids, "not-a-uuid"]}, "The selection contains something that is not"),
        ({"action": "approve", "item_ids": [*ids, str(foreign["id"])]}, "not in this workspace"),
        ({"action": "approve", "item_ids": [str(uuid.uuid4()) for _ in range(201)]}, "at most 200 items at a time"),
        ({"action": "approve", "item_ids": ids, "status": "DONE"}, "Unknown status"),
    ]
    for form, message in cases:
        for htmx in (False, True):
            response = await client.post("/admin/review/bulk", form, htmx=htmx)
            assert response.status_code == 400, (form, htmx, response.text[:300])
            if htmx:  # the readable message alone, for app.js to show in the bulk form
                assert message in unescape(response.text) and "<html" not in response.text
            else:
                assert message in unescape(response.text)
    # Another workspace's admin cannot act on these items either.
    crossed = await outsider.post("/admin/review/bulk", {"action": "approve", "item_ids": ids})
    assert crossed.status_code == 400 and "not in this workspace" in crossed.text
    assert await _statuses(items) == ["DRAFT"] * 3 and await _statuses([foreign]) == ["DRAFT"]
    assert await _audit_rows([*items, foreign], "CONTENT_APPROVED") == []


async def test_it_approves_and_opens_the_next_waiting_item_in_queue_order(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    first, second, third = await _drafts(syllabus, personas.acme["id"], 3)

    page = await client.get(f"/admin/items/{second['id']}")
    assert "Item 2 of 3 waiting" in page.text
    assert f'href="/admin/items/{third["id"]}" rel="next" data-shortcut="j"' in page.text  # Skip
    assert "Approve and next" in page.text and "<kbd>a</kbd>" in page.text and "Keyboard shortcuts" in page.text

    response = await client.post(f"/admin/items/{second['id']}/approve", {"note": "", "then": "next"})
    assert response.headers["location"] == f"/admin/items/{third['id']}"
    # From the last one it wraps to the start of the course.
    response = await client.post(f"/admin/items/{third['id']}/approve", {"note": "", "then": "next"})
    assert response.headers["location"] == f"/admin/items/{first['id']}"
    after = await client.get(response.headers["location"])
    assert f"Approved: {third['title']}. Next: {first['title']}." in after.text and "Item 1 of 1 waiting" in after.text
    # Plain "Approve" stays on the item.
    response = await client.post(f"/admin/items/{first['id']}/approve", {"note": ""})
    assert response.headers["location"] == f"/admin/items/{first['id']}"
    assert await _statuses([first, second, third]) == ["APPROVED"] * 3


async def test_it_returns_to_the_queue_when_nothing_is_left_to_review(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    [only] = await _drafts(syllabus, personas.acme["id"], 1)
    response = await client.post(f"/admin/items/{only['id']}/approve", {"note": "", "then": "next"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/review?syllabus={syllabus['id']}&module=&kind=&status=DRAFT"
    queue = _text((await client.get(response.headers["location"])).text)
    assert "Nothing left to review in Practical Git for Designers." in queue
    assert "Nothing is waiting for review here." in queue
    assert await _statuses([only]) == ["APPROVED"]
