"""Approved content written straight through the authoring services (no server, no model), and the
regeneration job rows a worker or a crash would leave."""

from __future__ import annotations

import uuid

import msgspec

from app.audit.services import Actor
from app.authoring import services as authoring
from app.authoring.generation import OUTPUT_TYPES, canonical_json, content_hash
from app.authoring.schemas import CourseBrief
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import ContentItem, Course, Syllabus
from app.llm.prompts import load_prompt
from app.regeneration.tables import RegenerationJob

BRIEF = CourseBrief(title="Practical Git for Designers", audience="product designers", level="beginner",
                    time_budget_hours=3, teaching_style="practical", constraints=["hands-on labs"])


def actor_of(persona) -> Actor:
    return Actor(persona.user_id, persona.email)


async def approved_module(personas, tenant: dict | None = None, persona=None) -> dict[str, dict]:
    """An approved syllabus and approved lesson 1.1, quiz 1.1 and project 1 (the prompt contracts' worked
    examples as content): {"syllabus", "LESSON", "QUIZ", "PROJECT"}."""
    tenant = tenant or personas.acme
    actor = actor_of(persona or personas.admin)
    course = (await Course.insert(Course(tenant_id=tenant["id"], title=BRIEF.title,
                                         brief=canonical_json(BRIEF).decode())).returning(Course.id))[0]
    document = msgspec.convert(load_prompt("syllabus").example_output, type=SyllabusDoc)
    generation = {"prompt_version": load_prompt("syllabus").full_version, "model": "mock-1"}
    syllabus = (await Syllabus.insert(Syllabus(
        tenant_id=tenant["id"], course_id=course["id"], revision=1, content=canonical_json(document).decode(),
        content_hash=content_hash(document), generation=msgspec.json.encode(generation).decode(),
    )).returning(Syllabus.id))[0]
    await authoring.approve_syllabus(tenant["id"], syllabus["id"], None, actor=actor)
    made = {"syllabus": await Syllabus.select().where(Syllabus.id == syllabus["id"]).first()}
    for kind, lesson_index in (("LESSON", 1), ("QUIZ", 1), ("PROJECT", None)):
        example = msgspec.convert(load_prompt(kind.lower()).example_output, type=OUTPUT_TYPES[kind])
        row = (await ContentItem.insert(ContentItem(
            tenant_id=tenant["id"], syllabus_id=syllabus["id"], kind=kind, module_index=1, lesson_index=lesson_index,
            title=getattr(example, "title", None) or f"{kind.title()} 1", status="DRAFT",
            content=canonical_json(example).decode(), content_hash=content_hash(example),
            generation=msgspec.json.encode(generation).decode(),
        )).returning(ContentItem.id))[0]
        made[kind] = await authoring.approve_item(tenant["id"], row["id"], None, actor=actor)
    return made


async def job_row(job_id: uuid.UUID) -> dict:
    return await RegenerationJob.select().where(RegenerationJob.id == job_id).first()


async def queue_without_wake(job_id: uuid.UUID) -> None:
    """PENDING -> QUEUED as the trigger does, but with no SAQ wake-up: the test runs the worker itself."""
    await RegenerationJob.raw("UPDATE regeneration_job SET status = 'QUEUED', queued_at = now() WHERE id = {}",
                              job_id)
