"""The whole improvement loop in a real browser (issue 13), on the real server and its in-process worker (mock
LLM): learners' events make a drop-off signal -> the nightly job's suggestion -> the admin reads it on Improve,
accepts it with a note and creates the regeneration job with the prefilled instruction -> triggers it -> the page
follows the job to completed -> the new draft's review shows what changed -> approve -> publish version 2 from
the publish panel -> a learner on version 1 is offered version 2 -> the lineage page of v2's lesson shows signal
-> suggestion -> job -> output -> approval -> version 2.

Screenshots: test-artifacts/screenshots/improve-*.png.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import time
import uuid

import pytest
from playwright.async_api import Page, expect

from app.analytics.demo import DROP_AFTER, HARD_QUIZ, seed_demo_analytics
from app.demo import DEMO_BRIEF, DEMO_PASSWORD, DEMO_USERS
from app.regeneration import worker
from tests.browser.conftest import page_overflow, shot, sign_in
from tests.conftest import DATABASE_URL, Client, create_database, fetch_rows, poll_rows, run_cli, start_server
from tests.publishing.helpers import published_course
from tests.regeneration.helpers import queue_without_wake

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"
NOTE = "Lesson 4 loses most readers: worth a clearer opening."
# The worker runs a mock model call on a machine shared with other test processes: generous, never a sleep.
SLOW = 60_000


async def _one(query: str, *args) -> dict:
    [row] = await fetch_rows(DATABASE_URL, query, *args)
    return dict(row)


async def _shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)


async def test_it_walks_a_signal_to_a_second_version_a_learner_is_offered(new_context, client, client_factory,
                                                                          personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    course_id = str(syllabus["id"])
    assert package["version"] == 1
    reader = client_factory()
    await reader.login(personas.learner.email)
    assert (await reader.post(f"/learn/{course_id}/enroll")).status_code == 303
    # Three weeks of simulated learners through the beacons' validation and storage, then the nightly job:
    # most stop after lesson 3, so lesson 4 raises a drop-off signal and the suggestion step a DROP_OFF.
    assert await seed_demo_analytics(personas.acme["id"], syllabus["id"], today=dt.datetime.now(dt.UTC).date())
    suggestion = await _one("SELECT * FROM content_suggestion WHERE course_id = $1 AND suggestion_type = 'DROP_OFF' "
                            "AND status = 'OPEN'", syllabus["id"])
    evidence = json.loads(suggestion["evidence"])
    assert evidence["signal"]["lesson_index"] == DROP_AFTER + 1
    lesson = await _one("SELECT * FROM content_item WHERE id = $1", suggestion["target_id"])
    assert (lesson["kind"], lesson["status"]) == ("LESSON", "APPROVED")
    severity = f"{suggestion['severity'].capitalize()} severity"

    # Improve: the suggestion with its severity, then its page with the evidence.
    admin = await (await new_context()).new_page()
    await sign_in(admin, personas.admin.email, landing="/admin")
    await admin.locator("header .nav-links").get_by_role("link", name="Improve").click()
    await admin.wait_for_url(re.compile(r"/admin/suggestions$"))
    row = admin.locator(f"#suggestion-{suggestion['id']}")
    await expect(row.locator(".badge").first).to_have_text(severity)
    await expect(row).to_contain_text("Drop-off · lesson")
    await expect(row).to_contain_text("Open")
    await row.get_by_role("link", name="Drop-off · lesson").click()
    await admin.wait_for_url(re.compile(rf"/admin/suggestions/{suggestion['id']}$"))
    facts = admin.locator(".suggestion-facts")
    await expect(facts).to_contain_text(severity)
    await expect(facts).to_contain_text(f"Lesson {evidence['target']['lesson']['module']}."
                                        f"{evidence['target']['lesson']['lesson']}")
    await expect(facts).to_contain_text(evidence["signal"]["summary"])
    viewer = admin.locator(f"#json-{suggestion['id']}")
    await viewer.locator("summary").click()
    await expect(viewer.locator("pre.json")).to_contain_text('"drop_off_rate"')
    await expect(viewer.locator("pre.json")).to_contain_text(evidence["signal"]["summary"])
    form = admin.locator(".accept-form")
    await expect(form.get_by_label("Create a regeneration job for this lesson")).to_be_checked()
    instruction = await form.locator("textarea[name=instruction]").input_value()
    assert instruction.strip(), "the instruction is prefilled from the evidence"
    await expect(form.get_by_text("Estimated cost")).to_be_visible()
    assert await page_overflow(admin) == 0
    await _shot(admin, "improve-suggestion")

    # Accept with a note: the job is created PENDING in the same step, and the page goes to it.
    await form.get_by_label(re.compile("^Note")).fill(NOTE)
    await form.get_by_role("button", name="Accept").click()
    await admin.wait_for_url(re.compile(rf"/admin/regeneration-jobs/{UUID}$"))
    job_id = uuid.UUID(admin.url.rsplit("/", 1)[1])
    await expect(admin.locator(".flash-success").first).to_contain_text("Suggestion accepted")
    status = admin.locator(f"#job-status-{job_id}")
    await expect(status.locator("h2").first).to_contain_text("Waiting to be triggered")
    await expect(status.locator("#cost-estimate")).to_contain_text("Estimated cost")
    await expect(admin.locator(".facts").first).to_contain_text(instruction.strip().splitlines()[0])
    assert (await _one("SELECT status FROM content_suggestion WHERE id = $1", suggestion["id"]))["status"] == "ACCEPTED"
    job = await _one("SELECT * FROM regeneration_job WHERE id = $1", job_id)
    assert (job["status"], job["suggestion_id"], job["target_id"]) == ("PENDING", suggestion["id"], lesson["id"])
    assert json.loads(job["instruction"])["text"].split() == instruction.split()  # as prefilled, word for word
    assert await page_overflow(admin) == 0
    await _shot(admin, "improve-job-pending")

    # Trigger: the page follows the job (htmx, every 2 s) until it has completed and links the new draft.
    await status.get_by_role("button", name="Trigger the job").click()
    await admin.wait_for_url(re.compile(rf"/admin/regeneration-jobs/{job_id}$"))
    review_link = admin.locator("#review-draft")
    await expect(review_link).to_be_visible(timeout=SLOW)
    await expect(admin.locator(f"#job-status-{job_id} h2").first).to_contain_text("Completed")
    await expect(admin.locator(".audit-trail")).to_contain_text("Completed")
    job = await _one("SELECT * FROM regeneration_job WHERE id = $1", job_id)
    assert job["status"] == "COMPLETED" and job["output_id"] is not None, job["error"]
    output = await _one("SELECT * FROM regeneration_output WHERE id = $1", job["output_id"])
    draft_id = output["content_item_id"]
    assert (await _one("SELECT status FROM content_item WHERE id = $1", draft_id))["status"] == "DRAFT"
    await _shot(admin, "improve-job-completed")

    # The new draft's review: what changed against the published lesson, then approve.
    await review_link.click()
    await admin.wait_for_url(re.compile(rf"/admin/items/{draft_id}$"))
    diff = admin.locator("#revision-diff")
    await expect(diff).to_be_visible()
    await expect(diff.locator("ins").first).to_be_visible()
    await expect(diff.get_by_role("link", name="Approved version →")).to_have_attribute(
        "href", f"/admin/items/{lesson['id']}")
    assert await page_overflow(admin) == 0
    await _shot(admin, "improve-review-diff")
    await admin.locator(f'form[action="/admin/items/{draft_id}/approve"]').get_by_role(
        "button", name="Approve", exact=True).click()
    await expect(admin.locator(".flash-success").first).to_contain_text("Approved")
    assert (await _one("SELECT status FROM content_item WHERE id = $1", draft_id))["status"] == "APPROVED"

    # Version 2 from the publish panel.
    await admin.goto(f"/admin/syllabi/{course_id}")
    publish = admin.locator(f'#publish form[action="/admin/syllabi/{course_id}/publish"] button[type=submit]')
    await expect(publish).to_be_enabled()
    await publish.click()
    await admin.wait_for_url(re.compile(rf"/admin/packages/{course_id}$"))
    await expect(admin.locator("#version-2")).to_be_visible()
    packages = await fetch_rows(DATABASE_URL, "SELECT version, document FROM course_package WHERE syllabus_id = $1 "
                                "ORDER BY version", syllabus["id"])
    assert [p["version"] for p in packages] == [1, 2]
    assert output["content_hash"] in packages[1]["document"] and output["content_hash"] not in packages[0]["document"]

    # The learner, still on version 1, is offered version 2.
    learner = await (await new_context()).new_page()
    await sign_in(learner, personas.learner.email, landing="/learn")
    await learner.goto(f"/learn/{course_id}")
    await expect(learner.locator(".upgrade-note")).to_contain_text("Version 2 of this course is available")
    await expect(learner.get_by_role("button", name="Switch to version 2")).to_be_visible()
    await _shot(learner, "improve-learner-offered-v2")

    # The lineage of v2's lesson, from its review page: signal -> suggestion -> decision -> job -> output ->
    # the draft, its approval and version 2, in that order.
    await admin.goto(f"/admin/items/{draft_id}")
    await admin.get_by_role("link", name="Where this came from").click()
    await admin.wait_for_url(re.compile(rf"/admin/lineage/items/{draft_id}$"))
    steps = admin.locator(".lineage-timeline > li")
    kinds = [re.search(r"lineage-(\w+)", c).group(1) for c in await steps.evaluate_all(
        "items => items.map(i => i.className.replace('lineage-step', ''))")]
    assert kinds == ["signal", "suggestion", "decision", "job", "output", "item", "approval", "package"], kinds
    await expect(admin.locator(".lineage-signal")).to_contain_text(evidence["signal"]["summary"])
    await expect(admin.locator(".lineage-decision")).to_contain_text(NOTE)
    await expect(admin.locator(".lineage-job .badge")).to_have_text("Completed")
    await expect(admin.locator(".lineage-package")).to_contain_text("Published in version 2")
    assert await page_overflow(admin) == 0
    await _shot(admin, "improve-lineage")

    # An admin of another workspace finds none of it.
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    for path in (f"/admin/suggestions/{suggestion['id']}", f"/admin/regeneration-jobs/{job_id}",
                 f"/admin/items/{draft_id}", f"/admin/lineage/items/{draft_id}"):
        assert (await outsider.get(path)).status_code == 404, path


async def test_a_failed_job_moves_on_through_a_retry_request(new_context, client, personas):
    """A job whose worker was lost (the sweeper failed it) says so and offers a retry form; the request is
    approved and carried out from the browser, and the new job, linked to the failed one, completes."""
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    quiz = await _one("SELECT * FROM content_item WHERE syllabus_id = $1 AND kind = 'QUIZ' AND module_index = 1 "
                      "AND lesson_index = 1", syllabus["id"])
    created = await client.post("/admin/regeneration-jobs", {"item": str(quiz["id"]),
                                                            "instruction": "Make the distractors more plausible"})
    assert created.status_code == 303, created.text[:500]
    job_id = uuid.UUID(created.headers["location"].rsplit("/", 1)[1])
    # A worker claims it and is lost (this test is that worker: no wake-up reaches the server's); the sweeper
    # fails the job once its heartbeat is older than the timeout.
    await queue_without_wake(job_id)
    assert (await worker.JOB_LEASE.claim(job_id))["status"] == "RUNNING"
    await fetch_rows(DATABASE_URL, "UPDATE regeneration_job SET heartbeat_at = now() - interval '1 hour' "
                     "WHERE id = $1", job_id)
    assert (await worker.sweep_regeneration())["failed_lost"] >= 1

    admin = await (await new_context()).new_page()
    await sign_in(admin, personas.admin.email, landing="/admin")
    await admin.goto("/admin/regeneration-jobs")
    await admin.locator(f'a[href="/admin/regeneration-jobs/{job_id}"]').first.click()
    await admin.wait_for_url(re.compile(rf"/admin/regeneration-jobs/{job_id}$"))
    await expect(admin.locator("#job-error")).to_contain_text("The worker running this job was lost")
    form = admin.locator(f"#intent-form-{job_id}")
    await expect(form).to_be_visible()  # the retry section loads itself (htmx) into the failed job's page
    assert await page_overflow(admin) == 0
    await _shot(admin, "improve-job-failed")

    await form.get_by_label("Reason").select_option("INFRA_ERROR")
    await form.get_by_label("Why retry it?").fill("The worker was restarted; the job only needs to run again.")
    await form.get_by_role("button", name="Ask for a retry").click()
    await admin.wait_for_url(re.compile(rf"/admin/retry-intents/{UUID}$"))
    intent_id = uuid.UUID(admin.url.rsplit("/", 1)[1])
    assert (await _one("SELECT status FROM retry_intent WHERE id = $1", intent_id))["status"] == "PENDING"
    await admin.get_by_role("button", name="Approve").click()
    await admin.get_by_role("button", name="Carry out this retry…").click()
    await admin.wait_for_url(re.compile(rf"/admin/retry-intents/{intent_id}/execute$"))
    await expect(admin.get_by_text("Estimated cost")).to_be_visible()
    await _shot(admin, "improve-retry-confirm")
    await admin.get_by_role("button", name="Yes, carry it out").click()
    await admin.wait_for_url(lambda url: re.search(rf"/admin/regeneration-jobs/{UUID}$", url) is not None
                             and not url.endswith(str(job_id)))
    new_id = uuid.UUID(admin.url.rsplit("/", 1)[1])
    intent = await _one("SELECT status, new_job_id FROM retry_intent WHERE id = $1", intent_id)
    assert (intent["status"], intent["new_job_id"]) == ("CONSUMED", new_id)
    await expect(admin.get_by_role("link", name="a failed job")).to_have_attribute(
        "href", f"/admin/regeneration-jobs/{job_id}")
    # Carrying out a retry also triggers the new job: the page follows it to the draft.
    await expect(admin.locator("#review-draft")).to_be_visible(timeout=SLOW)
    new = await _one("SELECT status, output_id, retry_of_job_id, retry_intent_id FROM regeneration_job WHERE id = $1",
                     new_id)
    assert (new["status"], new["retry_of_job_id"], new["retry_intent_id"]) == ("COMPLETED", job_id, intent_id)
    assert new["output_id"] is not None
    assert (await _one("SELECT status FROM regeneration_job WHERE id = $1", job_id))["status"] == "FAILED"
    await _shot(admin, "improve-retry-job-completed")

# ---------------------------------------------------------------------------------------------
# The demo install: what `make run` seeds (migrate, then seed-demo) leaves something to improve, and the loop
# runs on it over HTTP, as the demo admin and the demo learner.

OPEN_SQL = ("SELECT s.*, i.kind, i.status AS item_status FROM content_suggestion s JOIN tenant t ON t.id = s.tenant_id "
            "LEFT JOIN content_item i ON i.id = s.target_id WHERE t.slug = 'demo' AND s.status = 'OPEN' "
            "ORDER BY s.suggestion_type")


def _form_value(page: str, name: str) -> str:
    match = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, f"no {name} field"
    return html.unescape(match.group(1))


async def test_the_demo_install_runs_the_loop_from_its_seeded_signal_to_version_2():
    url = await create_database("demo-loop")
    env = {"DATABASE_URL": url}
    started = time.monotonic()
    assert run_cli(env, "migrate").returncode == 0
    seeded = run_cli(env, "seed-demo", timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    seed_seconds = time.monotonic() - started
    suggestions = await fetch_rows(url, OPEN_SQL)
    # Every open suggestion about a lesson or a quiz points at an approved item a job can regenerate.
    targeted = [s for s in suggestions if s["scope"] in ("LESSON", "QUIZ")]
    assert {(s["suggestion_type"], json.loads(s["evidence"])["signal"]["lesson_index"]) for s in targeted} >= {
        ("DROP_OFF", DROP_AFTER + 1), ("HIGH_RETRY", HARD_QUIZ)}, [dict(s) for s in suggestions]
    assert {(s["kind"], s["item_status"]) for s in targeted} <= {("LESSON", "APPROVED"), ("QUIZ", "APPROVED")}
    suggestion = next(s for s in targeted if s["suggestion_type"] == "HIGH_RETRY")
    course_id = suggestion["course_id"]

    server = start_server("demo-loop", **env)
    admin, learner = Client(server.url), Client(server.url)
    try:
        loop_started = time.monotonic()
        await admin.login(DEMO_USERS[1][0], DEMO_PASSWORD)
        assert (await admin.post("/tenants/switch", {"tenant_id": str(suggestion["tenant_id"])})).status_code == 303
        listed = await admin.get("/admin/suggestions?status=OPEN")
        assert f'id="suggestion-{suggestion["id"]}"' in listed.text
        page = await admin.get(f"/admin/suggestions/{suggestion['id']}")
        assert page.status_code == 200 and "Estimated cost" in page.text
        instruction = _form_value(page.text, "instruction")
        assert instruction.strip()
        accepted = await admin.post(f"/admin/suggestions/{suggestion['id']}/accept",
                                    {"note": "Two learners in three fail it: reword it.", "create_job": "on",
                                     "instruction": instruction})
        assert accepted.status_code == 303, accepted.text[:500]
        job_id = uuid.UUID(re.fullmatch(rf"/admin/regeneration-jobs/({UUID})", accepted.headers["location"])[1])
        [row] = await fetch_rows(url, "SELECT status FROM content_suggestion WHERE id = $1", suggestion["id"])
        assert row["status"] == "ACCEPTED"
        assert (await admin.post(f"/admin/regeneration-jobs/{job_id}/trigger")).status_code == 303
        [job] = await poll_rows(url, "SELECT * FROM regeneration_job WHERE id = $1",
                                lambda rows: rows[0]["status"] in ("COMPLETED", "FAILED"), job_id, timeout=60)
        assert job["status"] == "COMPLETED" and job["output_id"], job["error"]
        [output] = await fetch_rows(url, "SELECT * FROM regeneration_output WHERE id = $1", job["output_id"])
        draft_id = output["content_item_id"]
        review = await admin.get(f"/admin/items/{draft_id}")
        assert 'id="revision-diff"' in review.text, review.text[:3000]
        # The mock moves the right answers by its input (the evidence carries the signal's id, so it differs from
        # one install to the next): the review calls out an answer-key change exactly when there is one.
        [old] = await fetch_rows(url, "SELECT content FROM content_item WHERE id = $1", suggestion["target_id"])
        keys = [[q["correct_index"] for q in json.loads(doc)["questions"]] for doc in (old["content"],
                                                                                       output["content"])]
        assert ("Answer key changed" in review.text) == (keys[0] != keys[1]), keys
        assert (await admin.post(f"/admin/items/{draft_id}/approve", {"note": "clearer"})).status_code == 303
        published = await admin.post(f"/admin/syllabi/{course_id}/publish")
        assert published.status_code == 303, published.text[:500]
        versions = await fetch_rows(url, "SELECT version, document FROM course_package WHERE syllabus_id = $1 "
                                    "ORDER BY version", course_id)
        assert [v["version"] for v in versions] == [1, 2] and output["content_hash"] in versions[1]["document"]
        # The demo learner, enrolled on version 1 of the free course, is offered version 2.
        await learner.login(DEMO_USERS[2][0], DEMO_PASSWORD)
        course = await learner.get(f"/learn/{course_id}")
        assert DEMO_BRIEF["title"] in course.text and "Version 2 of this course is available" in course.text
        lineage = (await admin.get(f"/admin/lineage/items/{draft_id}")).text
        lineage = lineage[lineage.index('class="lineage-timeline"'):]
        chain = ["Signal raised", "Suggestion:", "Suggestion accepted", "Regeneration job for the quiz",
                 "New draft written", "Approved", "Published in version 2"]
        positions = [lineage.find(words) for words in chain]
        assert -1 not in positions and positions == sorted(positions), dict(zip(chain, positions, strict=True))
        loop_seconds = time.monotonic() - loop_started
    finally:
        await admin.aclose()
        await learner.aclose()
        server.stop()
    print(f"demo seeded in {seed_seconds:.1f} s; loop from suggestion to version 2 in {loop_seconds:.1f} s")
