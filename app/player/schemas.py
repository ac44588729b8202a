"""Learner form payloads, bounded by the boundary rule of app.web.inputs."""

from __future__ import annotations

import msgspec

from app.web import inputs

Choice = inputs.Line(8)  # "0".."3", or "" for an unanswered question; the service words a bad value


class QuizAnswers(msgspec.Struct):
    """One quiz post: q0..q9 (a quiz has at most ten questions, see authoring.schemas.Quiz) and when the
    page was rendered. Typed fields rather than a loose dict so a field sent twice is a 400 naming it."""

    rendered_at: inputs.Line(20) = ""
    q0: Choice = ""
    q1: Choice = ""
    q2: Choice = ""
    q3: Choice = ""
    q4: Choice = ""
    q5: Choice = ""
    q6: Choice = ""
    q7: Choice = ""
    q8: Choice = ""
    q9: Choice = ""

    def answers(self) -> dict[str, str]:
        return msgspec.structs.asdict(self)
