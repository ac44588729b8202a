"""The diff engine on hand-built lessons, quizzes, projects and packages (pure: no database, no server)."""

import msgspec

from app.authoring.schemas import Concept, CourseMetadata, Lesson, Project, Quiz, QuizQuestion, RubricCriterion
from app.llm.prompts import load_prompt
from app.publishing.diff import compare_items, compare_lessons, compare_projects, compare_quizzes, diff_packages
from app.publishing.schemas import CoursePackage, PackagedLesson, PackagedModule, Provenance, ProvenanceItem
from app.publishing.textdiff import Segment

replace = msgspec.structs.replace


def _lesson() -> Lesson:
    return msgspec.convert(load_prompt("lesson").example_output, type=Lesson)


def _project() -> Project:
    return msgspec.convert(load_prompt("project").example_output, type=Project)


def _question(text: str, options: list[str], correct: int, explanation: str) -> QuizQuestion:
    return QuizQuestion(question=text, options=options, correct_index=correct, explanation=explanation)


def _quiz() -> Quiz:
    return Quiz(questions=[
        _question("Which command records staged changes in the repository history?",
                  ["git commit", "git push", "git fetch", "git stash"], 0,
                  "A commit records what is staged; pushing only sends existing commits elsewhere."),
        _question("What does a branch let a designer do with an experiment?",
                  ["Work on it without touching main", "Delete old files", "Compress images", "Email the team"], 0,
                  "A branch is a separate line of work, so main stays as it was until you merge."),
        _question("Which file tells Git to leave build output out of the repository?",
                  [".gitignore", ".gitconfig", "README.md", "LICENSE"], 0,
                  "Patterns in .gitignore keep matching files untracked, such as exports and caches."),
    ])


def _with(quiz: Quiz, index: int, question: QuizQuestion) -> Quiz:
    questions = list(quiz.questions)
    questions[index] = question
    return Quiz(questions=questions)


def _text(segments: list[Segment], op: str) -> str:
    return "".join(s.text for s in segments if s.op == op)


# ---------------------------------------------------------------------------------------------
# Quizzes


def test_it_finds_nothing_between_equal_quizzes():
    diff = compare_quizzes(_quiz(), _quiz())
    assert [q.change for q in diff.questions] == ["unchanged"] * 3
    assert diff.changed == [] and diff.answer_key_changes == [] and diff.summary() == ""


def test_it_shows_a_reworded_question_word_by_word():
    old = _quiz()
    q = old.questions[0]
    new = _with(old, 0, replace(q, question="Which command records the staged changes in the project history?"))
    diff = compare_quizzes(old, new)
    [changed] = diff.changed
    assert (changed.number_a, changed.number_b, changed.kinds) == (1, 1, ["reworded"])
    assert [(s.op, s.text) for s in changed.question if s.op != "same"] == [
        ("ins", " the"), ("del", "repository"), ("ins", "project")]
    assert changed.answer_key is None and changed.options == [] and diff.summary() == "1 question reworded"


def test_it_lists_which_options_changed():
    old = _quiz()
    q = old.questions[1]
    new = _with(old, 1, replace(q, options=[q.options[0], "Delete old files for good", q.options[2], "Email a team"]))
    [changed] = compare_quizzes(old, new).changed
    assert changed.kinds == ["options changed"] and not changed.reworded
    assert [(o.letter, _text(o.segments, "ins")) for o in changed.options] == [("B", " for good"), ("D", "a")]
    assert changed.answer_key is None  # the correct option (A) kept its text and its letter


def test_it_calls_out_an_answer_that_moved_to_another_letter():
    old = _quiz()
    q = old.questions[2]
    new = _with(old, 2, replace(q, options=list(reversed(q.options)), correct_index=3))
    diff = compare_quizzes(old, new)
    [changed] = diff.changed
    key = changed.answer_key
    assert key is not None and key.moved_only and (key.old_option, key.new_option) == ("A", "D")
    assert key.question == 3 and key.new_answer == ".gitignore"
    assert "answer key changed" in changed.kinds and "options changed" in changed.kinds
    # Each option is shown where it went, not as a rewrite of the option that used to be at its letter.
    assert [(o.letter, o.old_letter, o.moved_only) for o in changed.options] == [
        ("A", "D", True), ("B", "C", True), ("C", "B", True), ("D", "A", True)]
    assert diff.answer_key_changes == [key]


def test_it_calls_out_a_different_correct_answer():
    old = _quiz()
    new = _with(old, 0, replace(old.questions[0], correct_index=1))
    [key] = compare_quizzes(old, new).answer_key_changes
    assert (key.old_answer, key.new_answer, key.moved_only) == ("git commit", "git push", False)


def test_it_treats_a_new_question_as_added_and_a_dropped_one_as_removed():
    old = _quiz()
    added = _question("How do you undo the last commit but keep its changes in your files?",
                      ["git reset --soft HEAD~1", "git rm", "git clean -fd", "git init"], 0,
                      "A soft reset moves the branch back one commit and leaves the changes staged.")
    new = Quiz(questions=[old.questions[0], old.questions[2], added])
    diff = compare_quizzes(old, new)
    assert [(q.number_a, q.number_b, q.change) for q in diff.questions] == [
        (1, 1, "unchanged"), (2, None, "removed"), (3, 2, "unchanged"), (None, 3, "added")]
    assert diff.summary() == "1 question removed, 1 question added"
    assert _text(diff.questions[3].question, "ins") == added.question


def test_it_shows_a_changed_explanation():
    old = _quiz()
    new = _with(old, 1, replace(old.questions[1], explanation=old.questions[1].explanation + " Branches are cheap."))
    [changed] = compare_quizzes(old, new).changed
    assert changed.kinds == ["explanation changed"] and _text(changed.explanation, "ins") == " Branches are cheap."


# ---------------------------------------------------------------------------------------------
# Lessons and projects


def test_it_finds_nothing_between_equal_lessons_and_projects():
    assert compare_lessons(_lesson(), _lesson()) == []
    assert compare_projects(_project(), _project()) == []
    assert not compare_items("LESSON", _lesson(), _lesson()).changed


def test_it_shows_each_changed_lesson_field_with_its_words():
    old = _lesson()
    concepts = list(old.explanation.concepts)
    rewritten = replace(concepts[1], explanation=concepts[1].explanation.replace("An `INNER JOIN`", "A plain `JOIN`"))
    concepts[1] = rewritten
    new = replace(old, duration_minutes=old.duration_minutes + 5,
                  explanation=replace(old.explanation, concepts=concepts),
                  practice=replace(old.practice, prompt=old.practice.prompt + " Use the orders table."))
    fields = compare_lessons(old, new)
    assert [f.label for f in fields] == [
        "Duration", f"Concept “{rewritten.title}” › explanation", "Practice › prompt"]
    duration, concept, practice = fields
    assert duration.summary == f"{old.duration_minutes} → {old.duration_minutes + 5} min"
    assert "INNER" in _text(concept.segments, "del") and "plain" in _text(concept.segments, "ins")
    assert _text(practice.segments, "ins") == " Use the orders table."


def test_it_matches_concepts_by_title_so_an_inserted_one_reads_as_added():
    old = _lesson()
    concepts = list(old.explanation.concepts)
    inserted = Concept(title="Anti-joins find what is missing",
                       explanation="An anti-join keeps the rows of one table that have no match in the other. " * 2)
    renamed = replace(concepts[0], title=concepts[0].title + " of the result")
    new = replace(old, explanation=replace(old.explanation, concepts=[renamed, inserted, *concepts[1:]]))
    fields = compare_lessons(old, new)
    assert [(f.label, f.change) for f in fields] == [
        (f"Concept “{renamed.title}” › title", "changed"), (f"Concept “{inserted.title}”", "added")]
    assert _text(fields[0].segments, "ins") == " of the result"


def test_it_numbers_changed_list_entries_and_marks_removed_ones():
    old = _lesson()
    new = replace(old, objectives=[old.objectives[0], old.objectives[1] + " exactly", *old.objectives[3:]])
    fields = compare_lessons(old, new)
    assert [(f.label, f.change) for f in fields] == [("Objective 2", "changed"), ("Objective 3", "removed")]
    assert fields[1].segments == [Segment("del", old.objectives[2])]


def test_it_compares_project_rubrics_criterion_by_criterion():
    old = _project()
    rubric = list(old.rubric)
    rubric[0] = replace(rubric[0], weight=rubric[0].weight - 5)
    rubric[1] = replace(rubric[1], weight=rubric[1].weight + 5, description=rubric[1].description + " Show it.")
    new = replace(old, rubric=rubric, deliverables=[*old.deliverables, "A screenshot of the final result table."])
    fields = compare_projects(old, new)
    assert [f.label for f in fields] == [
        f"Deliverable {len(old.deliverables) + 1}",
        f"Rubric “{rubric[0].criterion}” › weight",
        f"Rubric “{rubric[1].criterion}” › description", f"Rubric “{rubric[1].criterion}” › weight"]
    assert fields[1].summary == f"{old.rubric[0].weight} → {rubric[0].weight}%"
    assert fields[0].change == "added"
    assert isinstance(new.rubric[0], RubricCriterion)


# ---------------------------------------------------------------------------------------------
# Two package versions


def _package(lesson: Lesson, quiz: Quiz, *, extra_lesson: bool = False, project: Project | None = None,
             ids: str = "a") -> CoursePackage:
    course = msgspec.convert(load_prompt("syllabus").example_output["course"], type=CourseMetadata)
    lessons = [PackagedLesson(index=1, module_index=1, lesson_index=1, lesson=lesson, quiz=quiz)]
    if extra_lesson:
        lessons.append(PackagedLesson(index=2, module_index=1, lesson_index=2, lesson=lesson, quiz=quiz))
    items = [ProvenanceItem(item_id=f"{ids}-{kind}-{lp.lesson_index}", kind=kind, module_index=1,
                            lesson_index=lp.lesson_index, content_hash="h", prompt_version="p", approved_by="u",
                            approved_at="t") for lp in lessons for kind in ("LESSON", "QUIZ")]
    items.append(ProvenanceItem(item_id=f"{ids}-PROJECT", kind="PROJECT", module_index=1, lesson_index=None,
                                content_hash="h", prompt_version="p", approved_by="u", approved_at="t"))
    provenance = Provenance(course_id="c", syllabus_id="s", syllabus_revision=1, syllabus_hash="h",
                            syllabus_prompt_version="p", syllabus_approved_by="u", syllabus_approved_at="t",
                            prompt_versions=[], approvers=[], items=items)
    return CoursePackage(format_version="1", course=course, modules=[
        PackagedModule(index=1, title="M", summary="S", lessons=lessons, project=project or _project())],
        provenance=provenance)


def test_it_reports_nothing_for_identical_versions():
    diff = diff_packages(_package(_lesson(), _quiz()), _package(_lesson(), _quiz()))
    assert {e.change for e in diff.entries} == {"unchanged"} and diff.answer_key_changes == 0
    assert diff.summary() == [] and diff.changed_entries == []


def test_it_lists_each_changed_slot_with_its_fields_questions_and_items():
    old_lesson, old_quiz = _lesson(), _quiz()
    new_lesson = replace(old_lesson, title="Joins that keep every row they should")
    new_quiz = _with(old_quiz, 0, replace(old_quiz.questions[0], correct_index=2))
    diff = diff_packages(_package(old_lesson, old_quiz), _package(new_lesson, new_quiz, ids="b"))
    [entry] = diff.changed_entries
    assert (entry.module_index, entry.lesson_index, entry.change) == (1, 1, "changed")
    assert entry.details == ["title", "quiz"] and entry.title == new_lesson.title
    assert (entry.item_id, entry.quiz_item_id) == ("b-LESSON-1", "b-QUIZ-1")  # links to the newer items
    assert [k.question for k in entry.answer_key_changes] == [1]
    assert diff.summary() == ["1 lesson changed", "1 answer key changed"]


def test_it_marks_added_and_removed_lessons_and_changed_projects():
    project = _project()
    bigger = replace(project, estimated_hours=project.estimated_hours + 1)
    diff = diff_packages(_package(_lesson(), _quiz()), _package(_lesson(), _quiz(), extra_lesson=True, project=bigger))
    by_slot = {(e.module_index, e.lesson_index): e for e in diff.entries}
    assert by_slot[(1, 2)].change == "added" and by_slot[(1, 1)].change == "unchanged"
    assert by_slot[(1, None)].change == "changed" and by_slot[(1, None)].details == ["estimated hours"]
    assert diff.summary() == ["1 lesson added", "1 project changed"]
    reverse = diff_packages(_package(_lesson(), _quiz(), extra_lesson=True), _package(_lesson(), _quiz()))
    assert {(e.module_index, e.lesson_index): e.change for e in reverse.entries}[(1, 2)] == "removed"
