"""Demo analytics (S3, issue 12 item 10): three weeks of simulated learners reading the demo course, so the
analytics dashboard shows real charts and at least one signal on a first start.

The learners are real members of the workspace, enrolled the normal way; their events go through the same
validation and storage as the player's beacons (app.analytics.events: parse_batch, then ingest with the
simulated moment as `now`), never straight into the table. Then the rollup runs for every seeded day and the
signals for the last one (run_analytics_jobs). Seeded random numbers make every install tell the same story:
most learners pass the quizzes, the quiz of lesson 2 is hard (a low pass rate), and many stop after lesson 3
(a steep drop-off at lesson 4).

Idempotent and resumable: a learner who already has events is skipped, so a second start seeds nothing and a
start cut short is completed by the next one.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import structlog

from app.accounts import services as accounts
from app.accounts.tables import Membership, User
from app.analytics import events, jobs, rollup
from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, Actor, audit
from app.authoring.tables import Course, Syllabus, SyllabusStatus
from app.db import POOL_OPTIONS, engine, independent_connection
from app.player import services as player

log = structlog.get_logger("coursewright.analytics")

SEED = 12
DAYS = 21
LEARNERS = 80
EMAIL = "reader{:02d}@learners.demo.coursewright.dev"
FIRST = ["Amara", "Bruno", "Chen", "Dana", "Emil", "Farah", "Goran", "Hana", "Ines", "Jonas", "Kemi", "Luca",
         "Mira", "Nils", "Oona", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Yusuf"]
LAST = ["Alves", "Berg", "Costa", "Dahl", "Eze", "Fischer", "Garcia", "Haas", "Ito", "Jensen", "Kowalski", "Lund"]

HARD_QUIZ = 2  # its quiz is passed about a third of the time
DROP_AFTER = 3  # most learners stop here: lesson 4 loses them
PASS_CHANCE, HARD_PASS_CHANCE = 0.85, 0.3
STOP_CHANCE, STEEP_STOP_CHANCE = 0.04, 0.6
RETURN_CHANCE = 0.65  # comes back the next day
NEVER_START_CHANCE = 0.1  # looks at the overview and leaves


async def demo_syllabus(tenant_id: uuid.UUID, title: str) -> uuid.UUID | None:
    row = await Syllabus.select(Syllabus.id).where(
        (Syllabus.tenant_id == tenant_id) & (Syllabus.status == SyllabusStatus.APPROVED.value)
        & (Syllabus.course_id.is_in(Course.select(Course.id).where(
            (Course.tenant_id == tenant_id) & (Course.title == title))))).first()
    return row["id"] if row else None


async def seed_demo_analytics(tenant_id: uuid.UUID, syllabus_id: uuid.UUID | None, *,
                              today: dt.date | None = None, learners: int = LEARNERS) -> bool:
    """Seed the missing simulated learners' events for the DAYS days before `today`, then roll them up and
    raise the signals; returns whether anything was seeded."""
    if syllabus_id is None:
        return False
    emails = [EMAIL.format(n + 1) for n in range(learners)]
    existing = {row["email"]: row["id"] for row in await User.select(User.id, User.email).where(
        User.email.is_in(emails))}
    seeded = await _seeded(syllabus_id)
    if len(existing) == learners and seeded.issuperset(existing.values()):
        return False  # the usual start: everything is there
    async with _pooled():
        return await _seed(tenant_id, syllabus_id, emails, existing, seeded, today or dt.datetime.now(dt.UTC).date())


@asynccontextmanager
async def _pooled() -> AsyncIterator[None]:
    """Seeding makes about a thousand round trips; at start-up (before the app opens its pool) each would open
    its own connection, which made the seeding take half a minute instead of a few seconds."""
    db = engine()
    if db.pool is not None:
        yield
        return
    await db.start_connection_pool(min_size=1, max_size=4, **POOL_OPTIONS)
    try:
        yield
    finally:
        await db.close_connection_pool()


async def _seed(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, emails: list[str], existing: dict[str, uuid.UUID],
                seeded: set[uuid.UUID], today: dt.date) -> bool:
    started = time.perf_counter()
    first_day = today - dt.timedelta(days=DAYS)
    _package, document = await player.course_preview(tenant_id, syllabus_id)
    lessons = [entry.index for entry in document.lessons]
    readers = await _readers(tenant_id, syllabus_id, emails, existing)
    await jobs.ensure_partitions(months_back=2)  # the seeded days may fall in last month
    stored = 0
    for number, user_id in enumerate(readers):
        if user_id in seeded:
            continue
        rng = random.Random(SEED * 1000 + number)  # per learner: a resumed seeding tells the same story
        for day, batch in _sessions(rng, syllabus_id, lessons, first_day, number):
            stored += await events.ingest(events.parse_batch(msgspec.json.encode({"events": batch})), tenant_id,
                                          user_id, now=day)
    if not stored:
        return False
    days = [first_day + dt.timedelta(days=n) for n in range(DAYS)]
    summary = await jobs.run_analytics_jobs(days=days, now=dt.datetime.combine(today, dt.time(0, 5), dt.UTC))
    # Today too: the server recorded the readers' enrollments as they were made (now), and the dashboard's
    # "enrolled" should count them on a fresh demo; the signals stay those of the simulated weeks.
    await rollup.aggregate_day(today)
    log.info("demo_analytics_seeded", events=stored, learners=len(readers), job=summary["status"],
             signals=summary.get("signals"), duration_ms=round((time.perf_counter() - started) * 1000))
    return True


async def _readers(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, emails: list[str],
                   existing: dict[str, uuid.UUID]) -> list[uuid.UUID]:
    """The simulated learners, created and enrolled where missing. They sign in with nothing anyone knows:
    one random password, hashed once (hashing is deliberately slow, and they all share it)."""
    password_hash = None
    readers = []
    for n, email in enumerate(emails):
        user_id = existing.get(email)
        if user_id is None:
            password_hash = password_hash or accounts.hash_password(secrets.token_urlsafe(24))
            name = f"{FIRST[n % len(FIRST)]} {LAST[(n * 7) % len(LAST)]}"
            user_id = (await User.insert(User(email=email, name=name, password_hash=password_hash)).returning(
                User.id))[0]["id"]
            await audit(AuditAction.USER_CREATED, actor=SYSTEM, tenant_id=tenant_id, entity_type="user",
                        entity_id=user_id, metadata={"email": email, "simulated": True})
        if not await Membership.exists().where((Membership.tenant_id == tenant_id) & (Membership.user_id == user_id)):
            await accounts.add_membership(tenant_id, user_id, "learner", actor=SYSTEM)
        await player.enroll(tenant_id, user_id, syllabus_id, actor=Actor(user_id, email))
        readers.append(user_id)
    return readers


async def _seeded(syllabus_id: uuid.UUID) -> set[uuid.UUID]:
    async with independent_connection() as conn:
        rows = await conn.fetch("SELECT DISTINCT user_id FROM analytics_event WHERE course_id = $1 "
                                "AND event_type = 'course_viewed' AND user_id IS NOT NULL", syllabus_id)
    return {row["user_id"] for row in rows}


def _event(course: str, clock: dt.datetime, event_type: str, lesson: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": event_type, "course_id": course, "lesson_index": lesson,
            "client_ts": int(clock.timestamp() * 1000), **extra}


def _sessions(rng: random.Random, syllabus_id: uuid.UUID, lessons: list[int], first_day: dt.date,
              number: int) -> list[tuple[dt.datetime, list[dict[str, Any]]]]:
    """One learner's visits: (when, the events of that visit), as the player would have sent them."""
    course = str(syllabus_id)
    # Someone starts on each of the days; the others mostly lately (a course getting more popular).
    day = number if number < DAYS else int(rng.triangular(0, DAYS, DAYS))
    position, sessions = 0, []
    never_starts = rng.random() < NEVER_START_CHANCE
    while day < DAYS:
        clock = dt.datetime.combine(first_day + dt.timedelta(days=day), dt.time(rng.randrange(7, 21)), dt.UTC)
        clock += dt.timedelta(minutes=rng.randrange(60))
        batch = [_event(course, clock, "course_viewed")]
        stopped = never_starts
        for _ in range(rng.randint(1, 3)):
            if stopped or position >= len(lessons):
                break
            lesson = lessons[position]
            reading = int(rng.lognormvariate(12.8, 0.5))  # about 6 minutes, from one to twenty
            clock += dt.timedelta(milliseconds=reading)
            batch.append(_event(course, clock, "lesson_viewed", lesson, time_on_page_ms=reading))
            chance = HARD_PASS_CHANCE if lesson == HARD_QUIZ else PASS_CHANCE
            for _attempt in range(rng.randint(1, 3)):
                passed = rng.random() < chance
                score = rng.randrange(70, 101) if passed else rng.randrange(0, 70)
                batch.append(_event(course, clock, "quiz_attempted", lesson, metadata={"score_pct": score}))
                if passed:
                    batch.append(_event(course, clock, "quiz_passed", lesson, metadata={"score_pct": score}))
                    break
            # Completed by its quiz, or with "mark complete" after giving up on the quiz.
            batch.append(_event(course, clock, "lesson_completed", lesson))
            position += 1
            stopped = rng.random() < (STEEP_STOP_CHANCE if lesson == DROP_AFTER else STOP_CHANCE)
        sessions.append((clock, batch))
        if stopped or position >= len(lessons) or rng.random() > RETURN_CHANCE:
            break
        day += 1
    return sessions
