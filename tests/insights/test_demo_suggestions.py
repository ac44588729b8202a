"""The demo leaves something to improve: its seeded analytics (a steep drop-off at lesson 4, a hard quiz in
lesson 2) run the nightly job, whose suggestion step turns those signals into open suggestions. Run against a
test workspace's published course, as tests/analytics/test_demo_events.py does."""

from __future__ import annotations

import datetime as dt
import json

from app.analytics import jobs
from app.analytics.demo import DROP_AFTER, HARD_QUIZ, seed_demo_analytics
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course


async def test_it_leaves_open_suggestions_from_the_demos_signals(live_server):
    tenant = await make_tenant("Demo")
    admin = await make_member(tenant, "admin", "dee")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    today = dt.datetime.now(dt.UTC).date()
    assert await seed_demo_analytics(tenant["id"], syllabus["id"], today=today) is True
    rows = await fetch_rows(DATABASE_URL, "SELECT * FROM content_suggestion WHERE course_id = $1 AND status = 'OPEN' "
                            "ORDER BY suggestion_type", syllabus["id"])
    kinds = {(r["suggestion_type"], json.loads(r["evidence"])["signal"]["lesson_index"]) for r in rows}
    assert ("DROP_OFF", DROP_AFTER + 1) in kinds and ("HIGH_RETRY", HARD_QUIZ) in kinds, kinds
    audits = await fetch_rows(DATABASE_URL, "SELECT entity_id FROM audit_log WHERE action = "
                              "'CONTENT_SUGGESTION_CREATED' AND tenant_id = $1", tenant["id"])
    assert sorted(a["entity_id"] for a in audits) == sorted(str(r["id"]) for r in rows)
    # The admin sees them where the demo points: the Improve list and the course's analytics panel.
    page = (await client.get("/admin/suggestions?status=OPEN")).text
    assert all(f'id="suggestion-{r["id"]}"' in page for r in rows)
    panel = await client.get(f"/admin/suggestions/panel?course={syllabus['id']}", headers={"HX-Request": "true"})
    assert "Review" in panel.text and "No open suggestion" not in panel.text
    # A second start seeds nothing, and a re-run of the job creates no second suggestion.
    assert await seed_demo_analytics(tenant["id"], syllabus["id"], today=today) is False
    day = today - dt.timedelta(days=1)
    again = await jobs.run_analytics_jobs(days=[day], now=dt.datetime.combine(today, dt.time(0, 5), dt.UTC))
    assert again["status"] == "SUCCESS" and again["suggestions"]["suggestions_created"] == 0
    await client.aclose()
