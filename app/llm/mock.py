"""A deterministic stand-in for the model: coherent course content built from the request's variables.

The same CompletionRequest always yields byte-identical text (no clock, no randomness, no hash() — only
sha256 of the inputs where a choice has to vary), and the text reads like a course about the brief's
topic: it is assembled from `request.variables`, never from the rendered prose, so it does not depend
on the prompt templates. Every answer validates against the msgspec type of its operation and, like a
strict-mode model, always spells out every field (`"example": null` included).

Variables per operation (the same contract the prompt templates use):
  syllabus  brief (CourseBrief fields), instruction, previous
  lesson    course (CourseMetadata), module {index,title,summary}, lesson (SyllabusLesson),
            lesson_titles_in_module, instruction, previous
  quiz      course, module, lesson_outline (SyllabusLesson), lesson (Lesson), question_count (5),
            instruction, previous
  project   course, module {index,title,summary,lessons}, instruction, previous
An `instruction` (an admin's regeneration request) changes the output deterministically, but is never
quoted: it is a note from a reviewer to the model, and learners must not read it. It picks a revision
note from a fixed bank (seeded by its sha256), adds it to the text and reshuffles the quiz answers.

Knobs:
  latency       settings.mock_llm_latency_ms, or MockProvider(settings, latency_ms=...) for benchmarks;
                every call sleeps that long (asyncio.sleep), failures included.
  failures      directives written anywhere in the JSON of `request.variables` (a course title is a
                convenient place):
                  [mock:invalid_json]    the first attempt returns prose and truncated JSON; a repair
                                         attempt (request.repair_attempt >= 1) returns valid output
                  [mock:schema]          the first attempt is valid JSON that violates the schema (a
                                         too-short lesson overview, a quiz question with 3 options, ...)
                  [mock:429]             raises RateLimited
                  [mock:timeout]         raises TimedOut
                  [mock:slow]            answers (correctly) after an extra SLOW_S seconds
                A "*N" suffix makes the failure last for attempts 0..N-1 ([mock:schema*3] fails the first
                call and both repairs). An operation prefix targets one operation only:
                [mock:lesson:invalid_json] leaves the syllabus, quiz and project calls alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.llm.base import Completion, CompletionRequest, LLMError, RateLimited, TimedOut
from app.settings import Settings

_DIRECTIVE = re.compile(r"\[mock:(?:([a-z_]+):)?(invalid_json|schema|429|timeout|slow)(?:\*(\d+))?\]")
SLOW_S = 3.0  # [mock:slow]: long enough to stop or kill a worker in the middle of the call


class MockProvider:
    name = "mock"

    def __init__(self, settings: Settings, latency_ms: int | None = None) -> None:
        self.model = settings.llm_model
        self.latency_ms = settings.mock_llm_latency_ms if latency_ms is None else latency_ms
        self.call_log = settings.mock_llm_call_log

    async def complete(self, request: CompletionRequest) -> Completion:
        if self.call_log:
            # Written before the latency, so a call cut short by kill -9 is still counted (bench/generation_kill.py
            # compares these lines with the ai_usage rows).
            with self.call_log.open("a") as log:
                log.write(f"{request.operation} {time.time():.6f}\n")
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        failures = _active_failures(request)
        if "slow" in failures:
            await asyncio.sleep(SLOW_S)
        if "429" in failures:
            raise RateLimited("mock provider: injected rate limit ([mock:429])")
        if "timeout" in failures:
            raise TimedOut("mock provider: injected timeout ([mock:timeout])")
        build = _BUILDERS.get(request.operation)
        if build is None:
            raise LLMError(f"mock provider: no answer for operation {request.operation!r}")
        data = build(request.variables)
        if "schema" in failures:
            data = _VIOLATIONS[request.operation](data)
        text = json.dumps(data, ensure_ascii=False, indent=2)
        if "invalid_json" in failures:
            # What a model gets wrong in practice: chatter before the JSON, and output cut short.
            text = f"Sure! Here is the {request.operation} you asked for:\n\n```json\n{text[: len(text) // 2]}"
        input_chars = sum(len(message.content) for message in request.messages)
        return Completion(text=text, model=self.model, input_tokens=max(1, input_chars // 4),
                          output_tokens=max(1, len(text) // 4))


def _active_failures(request: CompletionRequest) -> set[str]:
    haystack = json.dumps(request.variables, ensure_ascii=False, default=str)
    active = set()
    for operation, failure, times in _DIRECTIVE.findall(haystack):
        if operation in ("", request.operation) and request.repair_attempt < int(times or 1):
            active.add(failure)
    return active


# ---------------------------------------------------------------------------------------------
# Small text helpers


def _fit(text: str, limit: int) -> str:
    """Shorten at a word boundary so long titles or audiences never break a max_length."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return cut + "…"


def _number(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


_TITLE_PREFIXES = re.compile(
    r"^(an? |the )?(introduction to|intro to|fundamentals of|foundations of|getting started with|learn(ing)?|"
    r"mastering|master|practical|applied|essentials of|a (practical |gentle )?guide to|hands-on)\s+",
    re.IGNORECASE,
)
_TITLE_SUFFIXES = re.compile(r"\s*(\(.*\)|for (absolute )?beginners|for professionals|101|bootcamp|course|basics|"
                             r"essentials|fundamentals|in practice)\s*$",
                             re.IGNORECASE)


def _topic(title: str) -> str:
    """The subject of a course title: "Introduction to SQL for Beginners" -> "SQL"."""
    topic = _TITLE_SUFFIXES.sub("", _TITLE_PREFIXES.sub("", title.strip())).strip(" :-")
    return _fit(topic or title.strip(), 80)


def _quote(title: str) -> str:
    return f"“{title}”"


def _lower_first(text: str) -> str:
    """For a sentence that starts with a verb ("Describe ..."), to continue another sentence."""
    first = text.split(" ", 1)[0]
    return text if len(first) > 1 and first.isupper() else text[:1].lower() + text[1:]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# What a revision adds to learner-facing text, chosen by the instruction (never the instruction itself).
_REVISION_NOTES = (
    " This version works through one concrete example step by step before generalising.",
    " This version keeps each explanation short and ends every part with a quick self-check.",
    " This version compares a weak and a strong approach side by side, and says why one wins.",
    " This version starts from a realistic scenario and returns to it at the end.",
    " This version names the most common mistake first, then shows how to avoid it.",
    " This version adds a short recap after each idea, so nothing is left implicit.",
    " This version puts the practical steps first and the background after them.",
    " This version links every idea to a decision you will make in your own work.",
)


def _instruction_note(instruction: str | None) -> str:
    if not instruction:
        return ""
    return _REVISION_NOTES[_number("revision", instruction) % len(_REVISION_NOTES)]


# ---------------------------------------------------------------------------------------------
# Syllabus


@dataclass(frozen=True)
class _Stage:
    title: str
    summary: str
    focus: str
    lessons: tuple[str, str, str, str, str]


# A course's modules are drawn from this progression, always in this order: fundamentals first, the
# capstone last. Which stages a course uses depends on its level and on how many modules it needs.
_STAGES = (
    _Stage("Foundations of {t}", "Sets up the vocabulary, mental models and working environment the rest of the course "
           "builds on, so that {a} start from a shared, solid base.", "the foundations of {t}",
           ("What {t} is and why it matters", "Key terms and mental models in {t}", "Setting up your {t} toolkit",
            "A guided first walkthrough of {t}", "Common misconceptions about {t}")),
    _Stage("Core Concepts of {t}", "Introduces the central ideas of {t} one at a time and shows how they fit together, "
           "with a short worked example for each.", "the core concepts of {t}",
           ("The building blocks of {t}", "How the parts of {t} fit together", "Core principles that guide {t}",
            "Reading and evaluating {t} examples", "Connecting the core concepts of {t}")),
    _Stage("Essential Techniques in {t}", "Turns concepts into technique: the methods {a} will use every day, when to "
           "choose each one, and the mistakes that catch most people.", "the essential techniques of {t}",
           ("Everyday techniques in {t}", "Step-by-step methods in {t}", "Choosing the right technique in {t}",
            "Practising core {t} techniques", "Avoiding common technique mistakes in {t}")),
    _Stage("Workflow and Tools for {t}", "Organises the work itself: planning a task, the tools that support it, and "
           "a repeatable workflow that keeps {t} work reliable.", "an effective {t} workflow",
           ("Planning a {t} task from start to finish", "Tools that support {t} work", "Organising and documenting "
            "{t} work", "Collaborating on {t} work", "Building a repeatable {t} workflow")),
    _Stage("Patterns and Good Practice in {t}", "Collects the recurring patterns, conventions and anti-patterns of "
           "{t}, and practises recognising them in real work.", "the patterns and good practice of {t}",
           ("Recognising recurring patterns in {t}", "Good practice and conventions in {t}", "Anti-patterns to "
            "avoid in {t}", "Adapting patterns to new {t} problems", "Reviewing {t} work against good practice")),
    _Stage("Applied {t}: Real-World Scenarios", "Applies everything so far to realistic scenarios and case studies "
           "chosen for {a}, under the constraints real work brings.", "{t} in realistic scenarios",
           ("Analysing a real-world {t} scenario", "Applying {t} under realistic constraints", "Case study: {t} "
            "in a small team", "Case study: {t} at a larger scale", "Lessons learned from applied {t}")),
    _Stage("Diagnosing Problems in {t}", "Builds a systematic approach to problems: reading symptoms, isolating the "
           "root cause, fixing it and making sure it stays fixed.", "diagnosing and fixing {t} problems",
           ("A systematic approach to {t} problems", "Reading the symptoms of {t} problems", "Isolating the root "
            "cause in {t}", "Fixing and verifying {t} problems", "Preventing recurring {t} problems")),
    _Stage("Quality and Review in {t}", "Defines what good {t} work looks like and how to check it, review it and "
           "improve it with feedback.", "quality and review in {t}",
           ("What quality means in {t}", "Checking and testing {t} work", "Giving and receiving feedback on {t}",
            "Measuring progress in {t}", "Building quality habits in {t}")),
    _Stage("Performance and Scale in {t}", "Looks at where effort and cost go in {t}, how to measure before "
           "optimising, and what changes as problems grow.", "performance and scale in {t}",
           ("Where the effort goes in {t}", "Measuring before optimising {t}", "Techniques for efficient {t}",
            "Scaling {t} to bigger problems", "Trade-offs between speed and quality in {t}")),
    _Stage("Design Decisions in {t}", "Practises framing, comparing and documenting decisions in {t}, and managing "
           "the risks that come with them.", "design decisions in {t}",
           ("Framing decisions in {t}", "Comparing alternative approaches to {t}", "Documenting {t} decisions",
            "Managing risk in {t}", "Revisiting {t} decisions as needs change")),
    _Stage("Advanced Topics in {t}", "Goes beyond the everyday: advanced techniques, edge cases and limits of {t}, "
           "and how it connects to neighbouring disciplines.", "advanced {t}",
           ("Advanced techniques in {t}", "Edge cases and limits of {t}", "Combining {t} with related "
            "disciplines", "Current developments in {t}", "Mentoring others in {t}")),
    _Stage("Capstone: {t} in Practice", "Brings the course together in a capstone that {a} scope, build, review and "
           "present, using every earlier module.", "a complete {t} capstone",
           ("Scoping the {t} capstone", "Planning the {t} capstone", "Building the {t} capstone",
            "Reviewing and refining the {t} capstone", "Presenting the {t} capstone")),
)
# Stage indexes in order of importance for each level; a course with m modules uses the first m.
_PRIORITY = {
    "beginner": (0, 2, 11, 1, 5, 4, 3, 6, 7, 10, 9, 8),
    "intermediate": (0, 2, 11, 1, 5, 6, 4, 10, 3, 7, 9, 8),
    "advanced": (0, 10, 11, 2, 8, 9, 6, 5, 1, 4, 7, 3),
}
_FIRST_MODULE = {
    "beginner": "{title}",
    "intermediate": "{title}: A Refresher",
    "advanced": "{title} Revisited",
}
_VERBS = {
    "beginner": ("Describe", "Apply", "Recognise"),
    "intermediate": ("Explain", "Apply", "Compare"),
    "advanced": ("Evaluate", "Design", "Critique"),
}
_STYLE_LESSON = {
    "practical": "Workshop: applying {f}",
    "conceptual": "Synthesis: {f} in perspective",
    "socratic": "Seminar: questioning {f}",
    "project-based": "Mini-project: {f}",
    "exam-focused": "Exam practice: {f}",
}
_STYLE_NOTE = {
    "practical": "hands-on: every lesson ends with a task you complete yourself",
    "conceptual": "conceptual: each lesson builds an understanding of why things work before how",
    "socratic": "socratic: lessons lead with questions you reason through before the answer is given",
    "project-based": "project-based: each module feeds a project that grows across the course",
    "exam-focused": "exam-focused: lessons close with exam-style questions and timed review",
}
_LEVEL_PREREQUISITE = {
    "beginner": None,
    "intermediate": "Working familiarity with the basics of {t}",
    "advanced": "Solid hands-on experience with {t}",
}


def _plan(hours: float) -> tuple[list[int], int]:
    """Lessons per module and minutes per lesson: 30-minute lessons, about five to a module."""
    total = min(60, max(3, math.floor(hours * 2 + 0.5)))
    modules = min(12, math.ceil(total / 5))
    sizes = [total // modules + (1 if m < total % modules else 0) for m in range(modules)]
    minutes = int(hours * 60) // total
    minutes = minutes - minutes % 5 if minutes >= 10 else minutes
    return sizes, min(600, max(5, minutes))


def _build_syllabus(variables: dict[str, Any]) -> dict[str, Any]:
    brief = variables["brief"]
    instruction = variables.get("instruction")
    title, level, style = brief["title"], brief["level"], brief["teaching_style"]
    audience, hours = brief["audience"], float(brief["time_budget_hours"])
    topic = _topic(title)
    sizes, minutes = _plan(hours)
    stages = sorted(_PRIORITY[level][: len(sizes)])
    fill = {"t": topic, "a": _fit(audience, 120)}
    modules, focuses = [], []
    for m, (stage_index, size) in enumerate(zip(stages, sizes, strict=True), start=1):
        stage = _STAGES[stage_index]
        module_title = stage.title.format(**fill)
        if stage_index == 0:
            module_title = _FIRST_MODULE[level].format(title=module_title)
        summary = stage.summary.format(**fill)
        if m == 1 and instruction:
            summary += _instruction_note(instruction)
        lesson_titles = [subject.format(**fill) for subject in stage.lessons[:size]]
        if size >= 3 and stage_index != 11:
            lesson_titles[-1] = _STYLE_LESSON[style].format(f=stage.focus.format(**fill))
        focus = stage.focus.format(**fill)
        if stage_index != 11:  # the capstone gets its own learning outcome
            focuses.append(focus)
        modules.append({
            "index": m,
            "title": _fit(module_title, 200),
            "summary": _fit(summary, 1000),
            "lessons": [_syllabus_lesson(m, n, titles=lesson_titles, focus=focus, level=level, style=style,
                                         topic=topic, minutes=minutes, last_in_module=n == size)
                        for n in range(1, size + 1)],
        })
    return {"course": _course_metadata(brief, topic, modules, focuses, minutes, instruction), "modules": modules}


def _syllabus_lesson(m: int, n: int, *, titles: list[str], focus: str, level: str, style: str, topic: str,
                     minutes: int, last_in_module: bool) -> dict[str, Any]:
    title = _fit(titles[n - 1], 200)
    describe, apply, compare = _VERBS[level]
    objectives = [
        f"{describe} the main ideas of {_quote(title)} in your own words",
        f"{apply} them to a short, realistic {topic} task",
    ]
    if minutes >= 30:
        objectives.append(f"{compare} good and poor approaches, and explain the difference")
    if n > 1:
        prerequisites = [f"Lesson {m}.{n - 1}: {titles[n - 2]}"]
    elif m > 1:
        prerequisites = [f"Module {m - 1}, completed in full"]
    else:
        first = _LEVEL_PREREQUISITE[level]
        prerequisites = [first.format(t=topic)] if first else []
    hooks = [
        f"quiz: three questions checking {_quote(title)}",
        f"practice: {_STYLE_NOTE[style].split(':')[0]} exercise applying {_quote(title)}",
    ]
    if last_in_module:
        hooks.append(f"project: module {m} project on {focus}")
    return {
        "index": n,
        "title": title,
        "objectives": [_fit(o, 500) for o in objectives],
        "prerequisites": [_fit(p, 500) for p in prerequisites],
        "estimated_minutes": minutes,
        "assessment_hooks": [_fit(h, 500) for h in hooks],
    }


def _course_metadata(brief: dict[str, Any], topic: str, modules: list[dict[str, Any]], focuses: list[str],
                     minutes: int, instruction: str | None) -> dict[str, Any]:
    level, style, hours = brief["level"], brief["teaching_style"], float(brief["time_budget_hours"])
    constraints = list(brief.get("constraints") or [])
    lessons = sum(len(module["lessons"]) for module in modules)
    first, last = modules[0]["title"], modules[-1]["title"]
    description = (
        f"{brief['title']} is {_article(level)} {level} course on {topic} for {_fit(brief['audience'], 300)}. "
        f"Across {len(modules)} module{'s' if len(modules) > 1 else ''} and {lessons} lessons of about {minutes} "
        f"minutes ({hours:g} hours in total) it moves from {_quote(first)} to {_quote(last)}. "
        f"The teaching style is {_STYLE_NOTE[style]}."
    )
    if constraints:
        description += f" It is shaped by these constraints: {', '.join(constraints)}."
    description += _instruction_note(instruction)
    describe = _VERBS[level][0]
    outcomes = [f"{describe} {focuses[0]} with confidence"]
    outcomes += [f"Apply {focus} in your own work" for focus in focuses[1:5]]
    outcomes.append(f"Compare approaches to {topic} and justify your choices")
    if modules[-1]["title"].startswith("Capstone"):
        outcomes.append(f"Plan, build and present a complete {topic} project")
    return {
        "title": brief["title"],
        "description": _fit(description, 5000),
        "audience": brief["audience"],
        "level": level,
        "time_budget_hours": hours,
        "teaching_style": style,
        "constraints": constraints,
        "learning_outcomes": [_fit(o, 500) for o in outcomes[:10]],
    }


# ---------------------------------------------------------------------------------------------
# Lesson


def _build_lesson(variables: dict[str, Any]) -> dict[str, Any]:
    course, module, outline = variables["course"], variables["module"], variables["lesson"]
    instruction = variables.get("instruction")
    titles = list(variables.get("lesson_titles_in_module") or [outline["title"]])
    title, minutes = outline["title"], min(600, max(5, int(outline["estimated_minutes"])))
    topic, audience, level = _topic(course["title"]), _fit(course["audience"], 200), course["level"]
    style = course.get("teaching_style", "practical")
    position = titles.index(title) if title in titles else outline["index"] - 1
    before = titles[position - 1] if 0 < position <= len(titles) else None
    after = titles[position + 1] if 0 <= position + 1 < len(titles) else None
    overview = (
        f"This lesson covers {_quote(title)}, part of the module {_quote(module['title'])} in "
        f"{_quote(course['title'])}. It is written for {audience} at the {level} level and takes about "
        f"{minutes} minutes."
    )
    overview += f" It builds directly on {_quote(before)}" if before else " It opens the module"
    overview += f" and prepares you for {_quote(after)}." if after else " and closes the module."
    overview += (f" By the end you will be able to {_lower_first(outline['objectives'][0]).rstrip('.')}."
                 + _instruction_note(instruction))
    concepts = _concepts(title, topic, audience, module["title"], before, minutes)
    takeaways = [
        f"{_quote(title)} is a practical part of {topic}, not an isolated fact to memorise",
        "Name the key ideas before applying them, and check the result afterwards",
        "Most mistakes come from skipping the checks, not from the hard parts",
    ]
    if after:
        takeaways.append(f"What you practised here is used again in {_quote(after)}")
    return {
        "title": title,
        "duration_minutes": minutes,
        "objectives": [_fit(o, 500) for o in outline["objectives"][:8]],
        "explanation": {"overview": _fit(overview, 5000), "concepts": concepts},
        "key_takeaways": [_fit(t, 500) for t in takeaways],
        "practice": _practice(title, topic, style, course.get("constraints") or []),
        "metadata": {"level": level, "prerequisites": [_fit(p, 500) for p in outline.get("prerequisites", [])[:8]]},
    }


def _concepts(title: str, topic: str, audience: str, module_title: str, before: str | None,
              minutes: int) -> list[dict[str, Any]]:
    short = _quote(_fit(title, 120))
    concepts = [
        {"title": f"Key ideas: {title}",
         "explanation": f"{short} gives {audience} a precise way to think about one part of {topic}. The lesson "
                        f"names its key ideas first, because a shared vocabulary makes every later step in "
                        f"{_quote(module_title)} easier to follow and to discuss with others.",
         "example": f"Before starting, list the terms from {short} you already know and mark the ones you could "
                    f"not yet explain to a colleague; revisit that list at the end of the lesson."},
        {"title": f"In practice: {title}",
         "explanation": f"In practice, {short} follows a simple loop: understand the situation, choose an "
                        f"approach, apply it in small steps and check the result. Each step is short, but skipping "
                        f"any of them is the most common reason {topic} work goes wrong.",
         "example": None},
        {"title": f"Common pitfalls: {title}",
         "explanation": f"Three pitfalls come up again and again with {short}: rushing to a solution before the "
                        f"problem is clear, copying an approach without checking that it fits, and not verifying "
                        f"the outcome. Each has a simple habit that prevents it.",
         "example": f"A learner reuses a technique from an earlier lesson"
                    f"{' (' + _quote(before) + ')' if before else ''} unchanged on a new {topic} problem; a quick "
                    f"check of its assumptions would have shown that it does not fit."},
        {"title": f"Where it fits: {title}",
         "explanation": f"{short} is one step in {_quote(module_title)}. Seeing where it sits, what it relies on "
                        f"and what comes after it, is what turns isolated lessons into working knowledge of "
                        f"{topic}.",
         "example": None},
    ]
    count = 2 if minutes <= 20 else 3 if minutes <= 45 else 4
    return [{"title": _fit(c["title"], 200), "explanation": _fit(c["explanation"], 5000),
             "example": _fit(c["example"], 3000) if c["example"] else None} for c in concepts[:count]]


def _practice(title: str, topic: str, style: str, constraints: list[str]) -> dict[str, str]:
    quoted = _quote(_fit(title, 200))
    prompts = {
        "practical": (f"Hands-on task: apply {quoted} to a small {topic} problem from your own work or the sample "
                      f"scenario. Write down each step you take and why you took it.",
                      "A worked solution with every step recorded, the reason for each step, and one check "
                      "that shows the result is correct."),
        "conceptual": (f"Write a short explanation (about 200 words) of {quoted} for a colleague who is new to "
                       f"{topic}, using one diagram or analogy.",
                       "A clear explanation that names the key ideas, shows how they connect, and uses an "
                       "analogy a newcomer would understand."),
        "socratic": (f"Answer in writing before re-reading the lesson: what problem does {quoted} solve, what "
                     f"would go wrong without it, and where does it stop being useful?",
                     "Three reasoned answers, each backed by an example, that show you can explain the purpose "
                     "and the limits of the idea."),
        "project-based": (f"Add a small increment to your {topic} course project that uses {quoted}, and write "
                          f"a changelog entry describing what you built and why.",
                          "A working project increment plus a changelog entry that links the change to the "
                          "ideas from this lesson."),
        "exam-focused": (f"Answer three exam-style questions on {quoted} in 15 minutes without notes, then mark "
                         f"your answers against the key takeaways.",
                         "Three answers completed in time, self-marked, with a note on each mistake and the "
                         "takeaway that corrects it."),
    }
    prompt, outcome = prompts.get(style, prompts["practical"])
    if constraints:
        prompt += f" Respect the course constraints: {', '.join(constraints)}."
    return {"prompt": _fit(prompt, 3000), "expected_outcome": _fit(outcome, 3000)}


# ---------------------------------------------------------------------------------------------
# Quiz


def _build_quiz(variables: dict[str, Any]) -> dict[str, Any]:
    lesson, course = variables["lesson"], variables["course"]
    instruction = variables.get("instruction")
    count = min(10, max(3, int(variables.get("question_count") or 5)))
    title, topic = lesson["title"], _topic(course["title"])
    material = [*_concept_questions(lesson, topic), *_takeaway_questions(lesson, topic),
                *_objective_questions(lesson)]
    first = _number(title, instruction or "") % 4
    questions = []
    for i in range(count):
        question, correct, wrong, why = material[i % len(material)]
        if i >= len(material):
            question = f"Revisiting the lesson: {_lower_first(question)}"
        answer = (first + 3 * i) % 4  # walks 0..3 in a shuffled order, so no position is always right
        options = _distinct([*wrong[:answer], correct, *wrong[answer:]])
        explanation = why + (_instruction_note(instruction) if i == 0 else "")
        questions.append({"question": _fit(question, 500), "options": options, "correct_index": answer,
                          "explanation": _fit(explanation, 1000)})
    return {"questions": questions}


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return sentence.rstrip(".") + "."


def _concept_questions(lesson: dict[str, Any], topic: str) -> list[tuple[str, str, list[str], str]]:
    lesson_title = _quote(_fit(lesson["title"], 200))
    misconceptions = [
        f"{lesson_title} only matters once you work on very large {topic} projects.",
        f"{lesson_title} is a matter of personal taste with no effect on the result.",
        f"{lesson_title} can be skipped if you memorise the steps of an earlier lesson.",
        f"Checking your result is unnecessary once you understand {lesson_title}.",
        f"The ideas in {lesson_title} work the same way in every situation, without adaptation.",
        f"{lesson_title} is mainly about memorising definitions rather than applying them.",
        f"Problems with {lesson_title} are always caused by the tools, never by the approach.",
        f"{lesson_title} is best applied in one large step rather than in small, checked steps.",
        f"Experienced people never need to revisit the basics of {lesson_title}.",
    ]
    questions = []
    for k, concept in enumerate(lesson["explanation"]["concepts"]):
        correct = _first_sentence(concept["explanation"])
        wrong = [misconceptions[(3 * k + j) % len(misconceptions)] for j in range(3)]
        questions.append((f"In the section {_quote(concept['title'])}, which statement matches what the lesson "
                          f"teaches?", correct, wrong,
                          f"As the section {_quote(concept['title'])} puts it: {correct} The other options are "
                          f"common misconceptions."))
    return questions


def _takeaway_questions(lesson: dict[str, Any], topic: str) -> list[tuple[str, str, list[str], str]]:
    wrong = [f"Speed matters more than understanding when learning {topic}.",
             f"Once learned, {topic} techniques never need checking again.",
             f"Mistakes in {topic} are best hidden rather than examined."]
    title = _quote(lesson["title"])
    stems = [f"Which of these is a key takeaway from {title}?", f"What should you remember from {title}?",
             f"Which statement sums up a main point of {title}?", f"Which advice does {title} give?"]
    return [(stems[k % len(stems)] + ("" if k < len(stems) else f" ({k + 1})"), takeaway, wrong,
             f"{takeaway.rstrip('.')} is one of the lesson's key takeaways; the other statements contradict "
             f"what the lesson teaches.") for k, takeaway in enumerate(lesson["key_takeaways"])]


def _objective_questions(lesson: dict[str, Any]) -> list[tuple[str, str, list[str], str]]:
    wrong = ["Re-reading the lesson title until it feels familiar.",
             "Copying a finished solution without running or checking it.",
             "Moving on to the next module straight away."]
    correct = "Completing the practice task and explaining each decision you made."
    return [(f"Which activity best shows that you can meet the objective {_quote(objective)}?", correct, wrong,
             "An objective is met when you can apply it and explain your reasoning; the practice task asks for "
             "exactly that.") for objective in lesson["objectives"]]


def _distinct(options: list[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for option in options:
        option = _fit(option, 290).rstrip(".")
        while option.strip().lower() in seen:
            option = option + " (alternative)"
        seen.add(option.strip().lower())
        result.append(option)
    return result


# ---------------------------------------------------------------------------------------------
# Project


def _build_project(variables: dict[str, Any]) -> dict[str, Any]:
    course, module = variables["course"], variables["module"]
    instruction = variables.get("instruction")
    lessons = list(module.get("lessons") or [])
    topic, audience = _topic(course["title"]), _fit(course["audience"], 200)
    lesson_titles = [lesson["title"] for lesson in lessons] or [module["title"]]
    statement = (
        f"This project is for {audience}: it puts {_quote(module['title'])} to work. "
        f"{module['summary'].rstrip('.')}. In this project you take a realistic {topic} problem from a blank "
        f"page to a reviewed result, drawing on the module's lessons: "
        f"{'; '.join(_quote(t) for t in lesson_titles)}. Work in small steps, record your decisions, and "
        f"check each result before moving on." + _instruction_note(instruction)
    )
    constraints = [f"Use only techniques covered in module {module['index']} and earlier",
                   "Keep a decision log explaining each significant choice",
                   f"Pitch the work at the {course['level']} level of the course"]
    constraints += [f"Respect the course constraint: {c}" for c in (course.get("constraints") or [])[:7]]
    deliverables = [f"A worked result demonstrating {_quote(t)}" for t in lesson_titles[:8]]
    deliverables.append("A one-page reflection on what worked, what did not, and what you would change")
    criteria = [(f"Application of {_fit(t, 150)}", f"Correctly applies the ideas of {_quote(_fit(t, 200))} "
                 f"to the project problem.") for t in lesson_titles[:5]]
    criteria.append(("Clarity and reflection", "The decision log and reflection explain choices clearly and "
                     "honestly assess the result."))
    weights = _split_100(len(criteria))
    minutes = sum(int(lesson.get("estimated_minutes", 30)) for lesson in lessons) or 60
    return {
        "title": _fit(f"Module {module['index']} project: {module['title']}", 200),
        "problem_statement": _fit(statement, 5000),
        "constraints": [_fit(c, 500) for c in constraints[:10]],
        "deliverables": [_fit(d, 500) for d in deliverables[:10]],
        "rubric": [{"criterion": _fit(name, 200), "description": _fit(text, 1000), "weight": weight}
                   for (name, text), weight in zip(criteria, weights, strict=True)],
        "estimated_hours": min(100.0, max(0.5, math.ceil(minutes / 60 * 0.75 * 2) / 2)),
    }


def _split_100(parts: int) -> list[int]:
    base = 100 // parts
    return [base + (100 - base * parts if i == 0 else 0) for i in range(parts)]


# ---------------------------------------------------------------------------------------------
# Schema violations for [mock:schema]: valid JSON, the kind of mistake a model makes


def _short_overview(data: dict[str, Any]) -> dict[str, Any]:
    data["explanation"]["overview"] = "Too short."
    return data


def _three_options(data: dict[str, Any]) -> dict[str, Any]:
    data["questions"][0]["options"] = data["questions"][0]["options"][:3]
    data["questions"][0]["correct_index"] = min(2, data["questions"][0]["correct_index"])
    return data


def _lesson_without_objectives(data: dict[str, Any]) -> dict[str, Any]:
    data["modules"][0]["lessons"][0]["objectives"] = []
    return data


def _single_criterion(data: dict[str, Any]) -> dict[str, Any]:
    data["rubric"] = [{**data["rubric"][0], "weight": 100}]
    return data


_BUILDERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "syllabus": _build_syllabus, "lesson": _build_lesson, "quiz": _build_quiz, "project": _build_project,
}
_VIOLATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "syllabus": _lesson_without_objectives, "lesson": _short_overview, "quiz": _three_options,
    "project": _single_criterion,
}
