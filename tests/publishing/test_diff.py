"""diff_packages on packages built from the prompt contracts' worked examples (pure, no database)."""

import msgspec

from app.authoring.schemas import CourseMetadata, Lesson, Project, Quiz
from app.llm.prompts import load_prompt
from app.publishing.diff import diff_packages
from app.publishing.schemas import CoursePackage, PackagedLesson, PackagedModule, Provenance


def _package(quiz: Quiz, *, extra_lesson: bool = False, lesson_title: str | None = None) -> CoursePackage:
    lesson = msgspec.convert(load_prompt("lesson").example_output, type=Lesson)
    if lesson_title:
        lesson = msgspec.structs.replace(lesson, title=lesson_title)
    project = msgspec.convert(load_prompt("project").example_output, type=Project)
    course = msgspec.convert(load_prompt("syllabus").example_output["course"], type=CourseMetadata)
    lessons = [PackagedLesson(index=1, module_index=1, lesson_index=1, lesson=lesson, quiz=quiz)]
    if extra_lesson:
        lessons.append(PackagedLesson(index=2, module_index=1, lesson_index=2, lesson=lesson, quiz=quiz))
    provenance = Provenance(course_id="c", syllabus_id="s", syllabus_revision=1, syllabus_hash="h",
                            syllabus_prompt_version="p", syllabus_approved_by="u", syllabus_approved_at="t",
                            prompt_versions=[], approvers=[], items=[])
    return CoursePackage(format_version="1", course=course, modules=[
        PackagedModule(index=1, title="M", summary="S", lessons=lessons, project=project)], provenance=provenance)


def _quiz() -> Quiz:
    return msgspec.convert(load_prompt("quiz").example_output, type=Quiz)


def test_it_reports_nothing_for_identical_versions():
    diff = diff_packages(_package(_quiz()), _package(_quiz()))
    assert {e.change for e in diff.entries} == {"unchanged"} and diff.answer_key_changes == 0


def test_it_calls_out_a_changed_answer_key():
    quiz = _quiz()
    first = quiz.questions[0]
    changed = msgspec.structs.replace(first, correct_index=(first.correct_index + 1) % 4)
    new = msgspec.structs.replace(quiz, questions=[changed, *quiz.questions[1:]])
    diff = diff_packages(_package(quiz), _package(new))
    [entry] = [e for e in diff.entries if e.lesson_index == 1]
    assert entry.change == "changed" and len(entry.answer_key_changes) == 1
    key = entry.answer_key_changes[0]
    assert key.question == 1 and key.old_answer == first.options[first.correct_index] and not key.moved_only


def test_it_calls_out_an_answer_that_only_moved_to_another_letter():
    quiz = _quiz()
    first = quiz.questions[0]
    options = list(reversed(first.options))
    moved = msgspec.structs.replace(first, options=options, correct_index=3 - first.correct_index)
    new = msgspec.structs.replace(quiz, questions=[moved, *quiz.questions[1:]])
    diff = diff_packages(_package(quiz), _package(new))
    key = next(e for e in diff.entries if e.answer_key_changes).answer_key_changes[0]
    assert key.moved_only and key.old_option != key.new_option


def test_it_marks_added_removed_and_retitled_lessons():
    diff = diff_packages(_package(_quiz()), _package(_quiz(), extra_lesson=True, lesson_title="A brand new title"))
    by_slot = {(e.module_index, e.lesson_index): e for e in diff.entries}
    assert by_slot[(1, 2)].change == "added"
    assert by_slot[(1, 1)].change == "changed" and any(d.startswith("title:") for d in by_slot[(1, 1)].details)
    reverse = diff_packages(_package(_quiz(), extra_lesson=True), _package(_quiz()))
    assert {(e.module_index, e.lesson_index): e.change for e in reverse.entries}[(1, 2)] == "removed"
