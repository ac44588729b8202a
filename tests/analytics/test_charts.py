"""The chart module is pure: figures in, SVG markup out. No database, no browser."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from app.analytics import charts
from app.analytics.charts import Bar, Step

SVG = "{http://www.w3.org/2000/svg}"


def _tree(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML, or this raises


def test_it_draws_one_bar_per_value_scaled_to_a_round_axis_top():
    root = _tree(charts.bar_chart("c", "Learners", [Bar("L1", 10), Bar("L2", 4), Bar("L3", 0)]))
    rects = root.findall(f"{SVG}rect")
    assert len(rects) == 3
    heights = [float(r.get("height")) for r in rects]
    assert heights == [charts.BAR_AREA_HEIGHT, charts.BAR_AREA_HEIGHT * 0.4, 0]
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert {"10", "4", "0", "L1", "L2", "L3", "5"} <= set(texts)


def test_it_is_an_accessible_image_with_its_title_and_the_figures_in_words():
    root = _tree(charts.bar_chart("drop", "Learners per lesson", [Bar("L1", 12), Bar("L2", 6, "−50%", True)]))
    assert root.get("role") == "img" and root.get("aria-label") == "Learners per lesson"
    assert root.get("aria-labelledby") == "drop-title drop-desc"
    assert root.find(f"{SVG}title").text == "Learners per lesson"
    assert root.find(f"{SVG}desc").text == "L1: 12; L2: 6 (−50%)"


def test_it_marks_a_drop_off_past_the_threshold_in_the_alert_class():
    lessons = [{"lesson_index": 1, "viewers": 10, "drop_off_rate": None},
               {"lesson_index": 2, "viewers": 8, "drop_off_rate": 0.2},
               {"lesson_index": 3, "viewers": 2, "drop_off_rate": 0.75}]
    markup = str(charts.drop_off_chart(lessons, threshold=0.4))
    assert markup.count('class="chart-bar chart-bar-alert"') == 1
    assert ">−75%</text>" in markup and ">−20%</text>" in markup
    assert 'class="chart-mark chart-mark-alert"' in markup


def test_it_escapes_titles_and_labels():
    markup = str(charts.bar_chart('x"><script>', "<b>Title</b> & co", [Bar("<i>L1</i>", 3, mark="<&>")]))
    assert "<script>" not in markup and "<b>" not in markup and "<i>" not in markup
    assert "&lt;b&gt;Title&lt;/b&gt; &amp; co" in markup and "&lt;&amp;&gt;" in markup
    funnel = str(charts.funnel_chart("f", "A </title><script>", [Step("<Viewed>", 3)]))
    assert "<script>" not in funnel and "&lt;Viewed&gt;" in funnel
    _tree(markup), _tree(funnel)


def test_it_draws_a_funnel_relative_to_its_widest_step_with_shares_of_the_first():
    root = _tree(charts.funnel_chart("f", "Funnel", [Step("Viewed", 10), Step("Enrolled", 4), Step("Completed", 0)]))
    bars = [r for r in root.findall(f"{SVG}rect") if "chart-bar" in r.get("class")]
    widths = [float(b.get("width")) for b in bars]
    assert widths[0] > widths[1] > widths[2] == 0
    assert round(widths[1] / widths[0], 2) == 0.4
    values = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "chart-value"]
    assert values == ["10 · 100%", "4 · 40%", "0 · 0%"]
    assert "Enrolled: 4 (40% of viewed)" in root.find(f"{SVG}desc").text


def test_it_draws_empty_charts_without_dividing_by_zero():
    bars = _tree(charts.bar_chart("e", "Nothing", []))
    assert bars.find(f"{SVG}desc").text == "No figures yet." and not bars.findall(f"{SVG}rect")
    funnel = _tree(charts.funnel_chart("e", "Nothing", [Step("Bought", 0), Step("Enrolled", 0)]))
    assert [t.text for t in funnel.findall(f"{SVG}text") if t.get("class") == "chart-value"] == ["0", "0"]


def test_it_rounds_the_axis_top_up_to_a_readable_figure():
    assert [charts.nice_ceiling(v) for v in (0, 0.3, 7, 10, 11, 23, 240, 999)] == [1, 0.5, 10, 10, 20, 25, 250, 1000]


def test_it_gives_the_same_markup_for_the_same_figures_and_uses_no_inline_style():
    lessons = [{"lesson_index": 1, "viewers": 5, "quiz_attempts": 4, "quiz_passes": 1, "pass_rate": 0.25,
                "drop_off_rate": None}]
    first = str(charts.drop_off_chart(lessons, 0.4)) + str(charts.pass_rate_chart(lessons, 0.5))
    assert first == str(charts.drop_off_chart(lessons, 0.4)) + str(charts.pass_rate_chart(lessons, 0.5))
    assert not re.search(r"\sstyle=|<style|<script", first)
    assert ">25%</text>" in first and ">1 of 4</text>" in first and "chart-bar-alert" in first
    assert ">100%</text>" in first  # a rate's axis goes to 100 %


# Text boxes from the markup: the font sizes are the stylesheet's (static/app.css), the widths a generous
# estimate (0.64 em a character, 0.95 em for "%" and the minus sign; wider in bold), so a pass here leaves room
# in real fonts (the browser test in test_dashboard_twelve_lessons.py measures the real ones). GAP: texts closer
# than that read as one.
STYLES = (Path(__file__).resolve().parents[2] / "static" / "app.css").read_text()
GAP = 4
FONT_PX = {name: int(px) for name, px in re.findall(r"\.chart \.(chart-[a-z-]+) \{[^}]*font-size: (\d+)px", STYLES)}


def _text_boxes(root: ET.Element) -> list[tuple[str, float, float, float, float]]:
    boxes = []
    for text in root.iter(f"{SVG}text"):
        classes = text.get("class").split()
        size = FONT_PX[classes[0]]
        bold = {"chart-value", "chart-mark-alert"} & set(classes)
        width = sum((1.05 if bold else 0.95) if char in "%−" else (0.72 if bold else 0.64) for char in text.text) * size
        x, y = float(text.get("x")), float(text.get("y"))
        left = {"start": x, "middle": x - width / 2, "end": x - width}[text.get("text-anchor", "start")]
        boxes.append((text.text, left, y - 0.8 * size, left + width, y + 0.2 * size))
    return boxes


def _overlaps(root: ET.Element) -> list[tuple[str, str]]:
    boxes = _text_boxes(root)
    return [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[1] < b[3] + GAP and b[1] < a[3] + GAP and a[2] < b[4] and b[2] < a[4]]


def _outside(root: ET.Element) -> list[str]:
    _x, _y, width, height = map(float, root.get("viewBox").split())
    return [box[0] for box in _text_boxes(root) if box[1] < 0 or box[3] > width or box[2] < 0 or box[4] > height]


def _twelve_lessons() -> list[dict]:
    lessons = []
    for n in range(1, 13):  # three-figure counts, a 100 % and a 0 % quiz, the widest marks there can be
        attempts = 160 - 9 * n
        passes = {1: attempts, 7: 0}.get(n, attempts * (n % 4 + 1) // 5)
        lessons.append({"lesson_index": n, "viewers": 1000 - 70 * n, "drop_off_rate": 0.07 if n > 1 else None,
                        "quiz_attempts": attempts, "quiz_passes": passes, "pass_rate": passes / attempts})
    return lessons


def test_it_keeps_the_labels_of_a_twelve_lesson_course_apart_in_the_pass_rate_chart():
    root = _tree(charts.pass_rate_chart(_twelve_lessons(), threshold=0.5))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == [f"Lesson {n}" for n in range(1, 13)]  # the whole word: there is room for it
    markup = str(charts.pass_rate_chart(_twelve_lessons(), 0.5))
    assert re.search(r'>100%</text><text class="chart-mark" x="[\d.]+" y="20">151 of 151</text>', markup)
    assert _overlaps(root) == [] and _outside(root) == []
    rows = [float(r.get("y")) for r in root.iter(f"{SVG}rect")]
    assert rows == sorted(rows) and len(set(rows)) == 12  # one row per lesson, in order


def test_it_keeps_the_labels_of_a_twelve_lesson_course_apart_in_the_drop_off_chart():
    root = _tree(charts.drop_off_chart(_twelve_lessons(), threshold=0.05))
    assert _overlaps(root) == [] and _outside(root) == []


def test_it_shows_the_overlap_check_catches_crowded_labels():
    crowded = [Bar(f"Lesson {n}", 50, mark="100 of 200") for n in range(1, 13)]
    assert _overlaps(_tree(charts.bar_chart("c", "Crowded", crowded)))
