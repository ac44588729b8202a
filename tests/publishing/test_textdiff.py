from app.publishing.textdiff import Segment, is_changed, similarity, word_diff


def _old(segments):
    return "".join(s.text for s in segments if s.op != "ins")


def _new(segments):
    return "".join(s.text for s in segments if s.op != "del")


def test_it_marks_a_replaced_word_and_keeps_the_rest():
    segments = word_diff("Use a retail example here.", "Use a banking example here.")
    assert segments == [Segment("same", "Use a "), Segment("del", "retail"), Segment("ins", "banking"),
                        Segment("same", " example here.")]


def test_it_rebuilds_both_texts_from_the_segments():
    old = "Lists keep order. Sets do not, and they drop duplicates!"
    new = "Lists keep their order; sets do not and drop duplicates."
    segments = word_diff(old, new)
    assert _old(segments) == old
    assert _new(segments) == new
    assert is_changed(segments)


def test_it_reports_equal_texts_as_unchanged():
    segments = word_diff("Same words.", "Same words.")
    assert segments == [Segment("same", "Same words.")]
    assert not is_changed(segments)
    assert similarity("Same words.", "Same words.") == 1.0


def test_it_handles_additions_to_empty_text():
    assert word_diff("", "New text") == [Segment("ins", "New text")]
    assert word_diff("Old text", "") == [Segment("del", "Old text")]


def test_it_measures_similarity_by_words():
    assert similarity("What is a list?", "What is a Python list?") > 0.8
    assert similarity("What is a list?", "Name three HTTP verbs.") < 0.4


def test_it_does_not_count_shared_spaces_as_similarity():
    assert similarity("What does git commit do in a repository?", "Which colour is the sky on a clear day?") < 0.3
    assert similarity("Branches keep experiments apart.", "branches keep experiments apart") > 0.8


def test_it_shows_a_rewritten_text_struck_whole_then_the_new_one():
    old = "Lists keep their order and allow duplicates."
    new = "A merge conflict is two edits to the same lines."
    assert word_diff(old, new) == [Segment("del", old), Segment("ins", new)]


def test_it_folds_a_one_word_island_into_the_change_around_it():
    segments = word_diff("Open the file and read every line of it today.",
                         "Open the archive then read every line of it today.")
    assert segments == [Segment("same", "Open the "), Segment("del", "file and"), Segment("ins", "archive then"),
                        Segment("same", " read every line of it today.")]
    segments = word_diff("Save the red file to disk now please, said the teacher.",
                         "Save the blue file to cloud now please, said the teacher.")
    # "file to" is two words: kept as they are, between two separate edits.
    assert [s.op for s in segments] == ["same", "del", "ins", "same", "del", "ins", "same"]
    assert _old(segments) == "Save the red file to disk now please, said the teacher."
