"""Unit tests for the outline comparison (app/authoring/outline_diff.py): pure, no database."""

from __future__ import annotations

import msgspec

from app.authoring.outline_diff import compare_outlines, list_rows, out_of_order
from app.authoring.schemas import CourseMetadata, Syllabus, SyllabusLesson, SyllabusModule
from app.publishing.textdiff import Segment

COURSE = CourseMetadata(
    title="Practical Git for Designers", description="A hands-on course for designers. " * 3,
    audience="product designers", level="beginner", time_budget_hours=6, teaching_style="practical",
    constraints=["hands-on labs"], learning_outcomes=["Commit work safely", "Share work through GitHub"],
)


def lesson(title: str, *objectives: str, minutes: int = 30,
           hooks: tuple[str, ...] = ("A short quiz",)) -> SyllabusLesson:
    return SyllabusLesson(index=1, title=title, objectives=list(objectives or (f"Explain {title.lower()}",)),
                          prerequisites=[], estimated_minutes=minutes, assessment_hooks=list(hooks))


def module(title: str, *lessons: SyllabusLesson,
           summary: str = "What this module is about, in brief.") -> SyllabusModule:
    return SyllabusModule(index=1, title=title, summary=summary, lessons=list(lessons))


def outline(*modules: SyllabusModule, course: CourseMetadata = COURSE) -> Syllabus:
    """Indexes numbered from 1, as the normalizer leaves them."""
    numbered = [SyllabusModule(index=m, title=mod.title, summary=mod.summary, lessons=[
        SyllabusLesson(index=n, title=les.title, objectives=les.objectives, prerequisites=les.prerequisites,
                       estimated_minutes=les.estimated_minutes, assessment_hooks=les.assessment_hooks)
        for n, les in enumerate(mod.lessons, start=1)]) for m, mod in enumerate(modules, start=1)]
    return Syllabus(course=course, modules=numbered)


BASICS = module("Git basics", lesson("What version control is", "Explain why designers version files"),
                lesson("Your first commit", "Make a commit in GitHub Desktop"),
                lesson("Reading the history", "Find an older version of a file"))
BRANCHES = module("Branches", lesson("Why branches exist", "Explain a branch in plain words"),
                  lesson("Merging work", "Merge a branch without conflicts"))
SHARING = module("Sharing on GitHub", lesson("Pushing and pulling", "Push a branch to GitHub"),
                 lesson("Pull requests for review", "Open a pull request for a design change"))


def text(segments: list[Segment], op: str) -> str:
    return "".join(s.text for s in segments if s.op == op)


def test_it_finds_nothing_between_equal_outlines():
    diff = compare_outlines(outline(BASICS, BRANCHES), outline(BASICS, BRANCHES))
    assert not diff.changed and diff.summary() == [] and diff.course == []
    assert [m.status for m in diff.modules] == ["same", "same"]
    assert all(lesson.status == "same" and lesson.fields == [] for m in diff.modules for lesson in m.lessons)


def test_it_reports_a_renamed_lesson_with_a_word_diff_of_its_title():
    renamed = module("Git basics", BASICS.lessons[0],
                     lesson("Your very first commit", "Make a commit in GitHub Desktop"), BASICS.lessons[2])
    diff = compare_outlines(outline(BASICS), outline(renamed))
    change = diff.modules[0].lessons[1]
    assert (change.status, change.renamed, change.moved) == ("changed", True, False)
    assert (change.old_position, change.new_position) == ("1.2", "1.2")
    assert change.title == [Segment("same", "Your"), Segment("ins", " very"), Segment("same", " first commit")]
    assert diff.summary() == ["1 lesson renamed"]


def test_it_matches_a_lesson_renamed_outright_by_position_when_its_objectives_stayed():
    renamed = module("Git basics", BASICS.lessons[0], lesson("Saving a snapshot", "Make a commit in GitHub Desktop"),
                     BASICS.lessons[2])
    change = compare_outlines(outline(BASICS), outline(renamed)).modules[0].lessons[1]
    assert (change.status, change.renamed) == ("changed", True)
    # Nothing shared: the old title struck whole, then the new one (not a word-by-word jumble).
    assert change.title == [Segment("del", "Your first commit"), Segment("same", " "),
                            Segment("ins", "Saving a snapshot")]


def test_it_reports_an_added_and_a_removed_lesson_not_a_rename_when_nothing_is_shared():
    # The removed last lesson's place is taken by a new one about something else: not a rename.
    changed = module("Git basics", BASICS.lessons[0], BASICS.lessons[1],
                     lesson("Undoing a mistake", "Revert a commit that broke a mock-up", hooks=("Fix a broken file",)))
    diff = compare_outlines(outline(BASICS), outline(changed))
    statuses = [(c.status, c.old_position, c.new_position) for c in diff.modules[0].lessons]
    assert statuses == [("same", "1.1", "1.1"), ("same", "1.2", "1.2"), ("added", None, "1.3"),
                        ("removed", "1.3", None)]
    added = diff.modules[0].lessons[2]
    assert [f.label for f in added.fields] == ["Objectives", "Estimated time", "Assessment"]
    assert all(row.op == "ins" for f in added.fields for row in f.rows)
    assert diff.summary() == ["1 lesson added", "1 lesson removed"]


def test_it_calls_a_swap_a_move_but_not_the_shift_after_an_insertion():
    swapped = module("Git basics", BASICS.lessons[1], BASICS.lessons[0], BASICS.lessons[2])
    changes = compare_outlines(outline(BASICS), outline(swapped)).modules[0].lessons
    assert sum(c.moved for c in changes) == 1 and not changes[2].moved
    inserted = module("Git basics", lesson("Installing GitHub Desktop", "Install the app"), *BASICS.lessons)
    changes = compare_outlines(outline(BASICS), outline(inserted)).modules[0].lessons
    assert [c.status for c in changes] == ["added", "same", "same", "same"]
    assert [c.new_position for c in changes[1:]] == ["1.2", "1.3", "1.4"]  # shifted, not moved


def test_it_reports_modules_moved_renamed_added_and_removed():
    diff = compare_outlines(outline(BASICS, BRANCHES, SHARING),
                            outline(module("Sharing your work on GitHub", *SHARING.lessons), BASICS,
                                    module("Undo and recovery", lesson("Reverting", "Revert a commit"))))
    summary = [(m.status, m.old_index, m.new_index, m.renamed, m.moved) for m in diff.modules]
    assert summary == [("changed", 3, 1, True, True), ("same", 1, 2, False, False), ("added", None, 3, False, False),
                       ("removed", 2, None, False, False)]
    assert [c.status for c in diff.modules[3].lessons] == ["removed", "removed"]
    assert text(diff.modules[0].title, "ins") == " your work" and text(diff.modules[0].title, "del") == ""
    assert diff.summary() == ["1 module renamed", "1 module moved", "1 module added", "1 lesson added",
                              "1 module removed", "2 lessons removed"]


def test_it_follows_a_lesson_into_another_module():
    source = module("Git basics", *BASICS.lessons[:2])
    target = module("Branches", *BRANCHES.lessons, BASICS.lessons[2])
    diff = compare_outlines(outline(BASICS, BRANCHES), outline(source, target))
    moved = diff.modules[1].lessons[2]
    assert (moved.status, moved.moved, moved.moved_from, moved.new_position) == ("changed", True, "1.3", "2.3")
    assert [c.status for c in diff.modules[0].lessons] == ["same", "same"]  # not listed as removed
    assert diff.summary() == ["1 lesson moved"]


def test_it_diffs_objectives_sentence_by_sentence_and_the_estimate():
    before = module("Git basics", lesson("Your first commit", "Make a commit", "Write a message", minutes=30))
    after = module("Git basics", lesson("Your first commit", "Make a small commit", "Write a message",
                                        "Undo the last commit", minutes=45))
    change = compare_outlines(outline(before), outline(after)).modules[0].lessons[0]
    fields = {f.label: f for f in change.fields}
    assert set(fields) == {"Objectives", "Estimated time"} and not change.renamed
    rows = fields["Objectives"].rows
    assert [r.op for r in rows] == ["changed", "same", "ins"]
    assert text(rows[0].segments, "ins") == "small "
    assert (text(fields["Estimated time"].rows[0].segments, "del"),
            text(fields["Estimated time"].rows[0].segments, "ins")) == ("30", "45")


def test_it_diffs_course_details_and_module_summaries():
    course = msgspec.structs.replace(COURSE, learning_outcomes=["Commit work safely", "Review changes with a team"])
    edited = module("Git basics", *BASICS.lessons, summary="What this module covers, in brief.")
    diff = compare_outlines(outline(BASICS), outline(edited, course=course))
    assert [f.label for f in diff.course] == ["Learning outcomes"]
    assert [r.op for r in diff.course[0].rows] == ["same", "changed"]
    assert [f.label for f in diff.modules[0].fields] == ["Summary"] and diff.modules[0].status == "changed"
    assert diff.summary() == ["course details changed", "1 module edited"]


def test_list_rows_pairs_rewordings_and_keeps_extra_sentences_as_added_or_removed():
    rows = list_rows(["a b", "c d", "e"], ["a x", "e", "f"])
    assert [r.op for r in rows] == ["changed", "del", "same", "ins"]


def test_out_of_order_keeps_the_longest_run_in_place():
    assert out_of_order({0: 0, 1: 1, 2: 2}) == set()
    assert out_of_order({0: 2, 1: 0, 2: 1}) == {0}  # the first moved to the end
    assert out_of_order({0: 1, 2: 0}) == {2} or out_of_order({0: 1, 2: 0}) == {0}
    assert len(out_of_order({0: 3, 1: 2, 2: 1, 3: 0})) == 3
