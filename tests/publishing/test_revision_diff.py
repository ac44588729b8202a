"""The item page shows what a new revision (or a regenerated draft) changed against the item it replaces, with the
same engine as the version diff."""

from markupsafe import escape

from app.authoring.generation import item_doc
from app.authoring.tables import ContentItem
from app.publishing.diff import compare_items
from tests.authoring.helpers import generated_content, wait_for_run
from tests.publishing.helpers import new_quiz_approved, published_course


async def _item(**where) -> dict:
    query = ContentItem.select()
    for column, value in where.items():
        query = query.where(getattr(ContentItem, column) == value)
    return await query.first()


async def test_it_shows_a_new_quiz_revision_against_the_approved_one(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    await new_quiz_approved(personas, syllabus)
    new = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "QUIZ")
        & (ContentItem.supersedes_id.is_not_null())).first()
    old = await _item(id=new["supersedes_id"])
    expected = compare_items("QUIZ", item_doc(old), item_doc(new))
    assert expected.quiz.changed  # the instruction changed something

    page = (await client.get(f"/admin/items/{new['id']}")).text
    section = page[page.index('<section class="revision-diff" id="revision-diff"'):]
    section = section[:section.index("</section>")]
    assert 'aria-labelledby="revision-diff-title"' in section
    assert "What changed since the previously approved version" in section
    assert f'href="/admin/items/{old["id"]}"' in section
    for question in expected.quiz.changed:
        assert f"<strong>Question {question.number}</strong>" in section
        for kind in question.kinds:
            assert f">{kind.capitalize()}</span>" in section
    if expected.answer_key_changes:
        assert "Answer key changed" in section


async def test_it_shows_a_regenerated_draft_against_the_previous_draft(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson = await _item(syllabus_id=syllabus["id"], kind="LESSON", module_index=1, lesson_index=1)
    assert 'id="revision-diff"' not in (await client.get(f"/admin/items/{lesson['id']}")).text  # a first draft

    response = await client.post(f"/admin/items/{lesson['id']}/regenerate", {"instruction": "use a retail example"})
    assert response.status_code == 303
    new = await _item(supersedes_id=lesson["id"])
    assert (await wait_for_run(new["run_id"]))["status"] == "SUCCEEDED"
    new = await _item(id=new["id"])
    fields = compare_items("LESSON", item_doc(lesson), item_doc(new)).fields
    assert fields

    page = (await client.get(f"/admin/items/{new['id']}")).text
    assert "What changed since the previous draft" in page
    for field in fields:
        assert f"<dt>{escape(field.label)}" in page
    assert "<ins>" in page or "<del>" in page
