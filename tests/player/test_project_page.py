"""The module project page of the player (L3): an enrolled learner reads the project brief and rubric of
the version they are enrolled in, reached from the course overview (the last one also from the last lesson),
with navigation to the next module; others are refused."""

from __future__ import annotations

import msgspec
from markupsafe import escape

from app.publishing.schemas import CoursePackage
from tests.publishing.helpers import published_course


async def _enrolled(client, client_factory, personas):
    """A published course of Acme, its package document, and Lena signed in and enrolled."""
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.post(f"/learn/{syllabus['id']}/enroll")).status_code == 303
    return syllabus["id"], msgspec.json.decode(package["document"], type=CoursePackage), learner


async def test_it_shows_the_module_project_with_its_rubric(client, client_factory, personas):
    course_id, document, learner = await _enrolled(client, client_factory, personas)
    module = document.modules[0]
    page = await learner.get(f"/learn/{course_id}/module/1/project")
    assert page.status_code == 200
    project = module.project
    assert f"<title>{escape(project.title)} · Coursewright</title>" in page.text
    assert f'<h1 id="page-heading" tabindex="-1">{escape(project.title)}</h1>' in page.text
    assert f"about {project.estimated_hours:g} hours" in page.text
    for criterion in project.rubric:
        assert f'<td class="criterion">{escape(criterion.criterion)}</td>' in page.text
        assert f"<span>{criterion.weight}%</span>" in page.text
    assert page.text.count("<li>") >= len(project.constraints) + len(project.deliverables)
    assert "Module 1 project" in page.text
    # Another module's project is not on this page.
    assert escape(document.modules[1].project.title) not in page.text


async def test_it_links_back_to_the_modules_last_lesson_and_on_to_the_next_module(client, client_factory, personas):
    course_id, document, learner = await _enrolled(client, client_factory, personas)
    first, second = document.modules[0], document.modules[1]
    page = await learner.get(f"/learn/{course_id}/module/1/project")
    assert f'href="/learn/{course_id}/lesson/{first.lessons[-1].index}"' in page.text
    assert f'href="/learn/{course_id}/lesson/{second.lessons[0].index}" role="button" class="nav-next">Next module' \
        in page.text
    # The last module's project leads back to the course overview instead.
    last = document.modules[-1]
    final = await learner.get(f"/learn/{course_id}/module/{last.index}/project")
    assert final.status_code == 200
    assert f'href="/learn/{course_id}" role="button" class="nav-next">Course overview' in final.text
    # Every project is reached from the overview, and the last one also from the course's last lesson.
    overview = await learner.get(f"/learn/{course_id}")
    for module in document.modules:
        assert f'href="/learn/{course_id}/module/{module.index}/project"' in overview.text
    last_lesson = await learner.get(f"/learn/{course_id}/lesson/{last.lessons[-1].index}")
    assert f'href="/learn/{course_id}/module/{last.index}/project" role="button" class="nav-next">Module project' \
        in last_lesson.text


async def test_it_answers_404_for_a_module_the_course_does_not_have(client, client_factory, personas):
    course_id, document, learner = await _enrolled(client, client_factory, personas)
    missing = await learner.get(f"/learn/{course_id}/module/{len(document.modules) + 1}/project")
    assert missing.status_code == 404
    for module_index in (0, -1):  # out of bounds: refused at the boundary or not found, never a 500
        response = await learner.get(f"/learn/{course_id}/module/{module_index}/project")
        assert response.status_code in (400, 404), module_index
    assert "This course has no such module." in (await learner.get(f"/learn/{course_id}/module/99/project")).text


async def test_it_refuses_the_project_to_learners_who_are_not_enrolled_and_to_visitors(client, client_factory,
                                                                                        personas, live_server):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    path = f"/learn/{syllabus['id']}/module/1/project"
    learner = client_factory()
    await learner.login(personas.learner.email)
    refused = await learner.get(path)
    assert refused.status_code == 403 and "Enroll in this course" in refused.text
    visitor = client_factory()
    anonymous = await visitor.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(path)).status_code == 404
