"""Errors where they happen (issue 9, item 3): a refused plain form post goes back to the page it came from
with the message (only to a page of this site); without such a page the error page offers the way forward;
htmx gets the readable message alone; the brief form names the bad field in words beside it and keeps the
input. Every refusal changes nothing."""

from __future__ import annotations

import re
from html import escape, unescape

import pytest

from tests.web.world import changed_tables, database_fingerprint


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


# The actions the issue calls dead ends, on the test world's published (so approved) course: (action, form,
# status, message, the page the button is on, the nearest page above the action's address, its name).
DEAD_ENDS = [
    ("/admin/items/{w.item_id}/approve", {"note": ""}, 409, "Only a draft can be approved; this item is approved.",
     "/admin/items/{w.item_id}", "/admin/items/{w.item_id}", "the item"),
    ("/admin/items/{w.item_id}/reject", {"reason": " "}, 400, "A reason is required.",
     "/admin/items/{w.item_id}", "/admin/items/{w.item_id}", "the item"),
    ("/admin/syllabi/{w.syllabus_id}/approve", {"note": ""}, 409,
     "Only a draft can be approved; this syllabus is approved.", "/admin/syllabi/{w.syllabus_id}",
     "/admin/syllabi/{w.syllabus_id}", "the syllabus"),
    ("/admin/syllabi/{w.syllabus_id}/regenerate", {"instruction": "shorter"}, 409,
     "Only a draft or rejected syllabus can be redrafted; this one is approved.", "/admin/syllabi/{w.syllabus_id}",
     "/admin/syllabi/{w.syllabus_id}", "the syllabus"),
    ("/admin/syllabi/{w.syllabus_id}/content", {}, 409, "Content for this syllabus has already been requested",
     "/admin/syllabi/{w.syllabus_id}", "/admin/syllabi/{w.syllabus_id}", "the syllabus"),
    ("/admin/runs/{w.run_id}/retry", {}, 409, "Only a failed syllabus draft can be tried again",
     "/admin/runs/{w.run_id}", "/admin/runs/{w.run_id}", "the generation run"),
    ("/admin/runs/{w.run_id}/regenerate-failed", {}, 409, "Nothing in this run has failed",
     "/admin/runs/{w.run_id}", "/admin/runs/{w.run_id}", "the generation run"),
]


@pytest.mark.parametrize("action,form,status,message,page,nearest,name", DEAD_ENDS)
async def test_it_goes_back_to_the_page_with_the_message(admin, world, live_server, action, form, status, message,
                                                         page, nearest, name):
    action, page = action.format(w=world), page.format(w=world)
    before = await database_fingerprint()
    response = await admin.post(action, form, headers={"referer": f"{live_server.url}{page}?from=test"})
    assert changed_tables(before, await database_fingerprint()) == []
    assert response.status_code == 303, response.text[:400]
    assert response.headers["location"] == f"{page}?from=test"
    shown = await admin.get(response.headers["location"])
    assert shown.status_code == 200
    flashes = re.findall(r'<div class="flash flash-error"[^>]*>(.*?)</div>', shown.text, re.S)
    assert any(message in unescape(text) for text in flashes), flashes


@pytest.mark.parametrize("action,form,status,message,page,nearest,name", DEAD_ENDS)
async def test_it_shows_the_way_forward_without_a_page_to_go_back_to(admin, world, action, form, status, message,
                                                                     page, nearest, name):
    action, nearest = action.format(w=world), nearest.format(w=world)
    for headers in ({}, {"referer": f"https://evil.example{nearest}"}, {"referer": "not a url"}):
        before = await database_fingerprint()
        response = await admin.post(action, form, headers=headers)
        assert changed_tables(before, await database_fingerprint()) == []
        assert response.status_code == status, (headers, response.text[:400])
        assert message in unescape(response.text)
        assert "evil.example" not in response.text and "location" not in response.headers
        assert f'<a href="{nearest}" role="button"' in response.text and f"Go to {name}" in response.text


async def test_it_offers_the_page_the_person_came_from_on_an_error_page(admin, world, live_server):
    response = await admin.get("/admin/review", params={"kind": "VIDEO"},
                               headers={"referer": f"{live_server.url}/admin/review?status=ALL"})
    assert response.status_code == 400
    assert '<a href="/admin/review?status=ALL" role="button">Back to the review queue</a>' in response.text
    # A GET is never redirected back: the page that failed is the one that was asked for.
    assert "location" not in response.headers
    # The same address as the referer is not offered as the way back.
    same = await admin.post(f"/admin/items/{world.item_id}/approve", {"note": ""},
                            headers={"referer": f"{live_server.url}/admin/items/{world.item_id}/approve"})
    assert same.status_code == 409 and "Back to" not in same.text
    assert f'<a href="/admin/items/{world.item_id}" role="button"' in same.text


async def test_it_answers_htmx_with_the_readable_message_alone(admin, world, live_server):
    before = await database_fingerprint()
    response = await admin.post("/admin/review/bulk", {"action": "approve"}, htmx=True,
                                headers={"referer": f"{live_server.url}/admin/review"})
    assert response.status_code == 400  # never redirected: app.js shows it in the form
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == escape("Select the items to approve first: tick their boxes in the table.")
    refused = await admin.post(f"/admin/items/{world.item_id}/approve", {"note": ""}, htmx=True)
    assert refused.status_code == 409 and refused.text == "Only a draft can be approved; this item is approved."
    assert changed_tables(before, await database_fingerprint()) == []


BRIEF = {"title": "Practical Git for Designers", "audience": "product designers who hand off files by email",
         "level": "beginner", "time_budget_hours": "3", "teaching_style": "practical"}


@pytest.mark.parametrize("field,value,words,inline", [
    ("title", "Git", "Course title must be at least 5 characters long", "Must be at least 5 characters long."),
    ("audience", "", "Target audience must be at least 3 characters long", "Must be at least 3 characters long."),
    ("time_budget_hours", "lots", "Time budget (hours) must be a number", "Must be a number."),
    ("time_budget_hours", "500", "Time budget (hours) must be at most 200", "Must be at most 200."),
    ("level", "wizard", "Skill level must be one of the choices in the list",
     "Must be one of the choices in the list."),
])
async def test_it_names_the_bad_brief_field_in_words_beside_it_and_keeps_the_input(admin, field, value, words, inline):
    before = await database_fingerprint()
    response = await admin.post("/admin/courses", {**BRIEF, field: value})
    assert changed_tables(before, await database_fingerprint()) == []
    assert response.status_code == 400
    assert f"Check the course brief: {words}." in _text(response.text)
    assert "Expected `" not in response.text and "$." not in response.text
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true" aria-describedby="[^"]*brief-{field}-error"',
                     response.text, re.S), field
    assert f'<small id="brief-{field}-error" class="field-error">{escape(inline)}</small>' in response.text
    assert 'value="product designers who hand off files by email"' in response.text or field == "audience"
    assert f'value="{value}"' in response.text or field == "level"
    assert response.text.count('aria-invalid="true"') == 1  # only the field at fault
