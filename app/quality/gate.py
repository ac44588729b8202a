"""The launch gate and the publish gate (SPEC O4): the coverage audit's validators as a pass/fail.

The launch gate looks at every published course (of one workspace or all): it fails when fewer than the
threshold percent of their modules are fully covered, or when a published course lacks a module's
assessment. The publish gate runs the same module validators on the version about to be published; the
publish panel lists what they find, and a workspace setting (publish_gate_blocking) makes them refuse."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from app.accounts.tables import Tenant
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.errors import InvalidInput
from app.publishing.schemas import CoursePackage
from app.quality.coverage import CourseCoverage, Gap, course_coverage, gaps, module_coverage, questions_target_of
from app.quality.tables import QualitySettings
from app.web import inputs

DEFAULT_THRESHOLD = 80


class CourseVerdict(msgspec.Struct, frozen=True, kw_only=True):
    workspace: str
    coverage: CourseCoverage


class LaunchGate(msgspec.Struct, frozen=True, kw_only=True):
    threshold: float
    courses: list[CourseVerdict]

    @property
    def modules_total(self) -> int:
        return sum(c.coverage.modules_total for c in self.courses)

    @property
    def modules_covered(self) -> int:
        return sum(c.coverage.modules_covered for c in self.courses)

    @property
    def percent(self) -> float:
        return round(100 * self.modules_covered / self.modules_total, 1) if self.modules_total else 100.0

    @property
    def lacking_assessment(self) -> list[CourseVerdict]:
        return [c for c in self.courses if c.coverage.lacks_assessment]

    @property
    def passed(self) -> bool:
        return self.percent >= self.threshold and not self.lacking_assessment

    def text(self) -> str:
        lines = [f"Launch gate: {self.modules_covered} of {self.modules_total} modules fully covered "
                 f"({self.percent:g}%), threshold {self.threshold:g}%.", ""]
        for verdict in self.courses:
            c = verdict.coverage
            missing = sum(1 for m in c.modules if not m.has_assessment)
            lines.append(f"  [{verdict.workspace}] {c.title} v{c.version}: {c.modules_covered}/{c.modules_total} "
                         f"modules covered ({c.percent:g}%)"
                         + (f", {missing} module(s) without a project" if missing else ""))
        if not self.courses:
            lines.append("  No published course.")
        lines.append("")
        if self.passed:
            lines.append("PASS")
        else:
            reasons = []
            if self.percent < self.threshold:
                reasons.append(f"coverage {self.percent:g}% is below {self.threshold:g}%")
            for verdict in self.lacking_assessment:
                reasons.append(f"{verdict.coverage.title} lacks its assessment")
            lines.append("FAIL: " + "; ".join(reasons))
        return "\n".join(lines) + "\n"


def check_threshold(threshold: float) -> float:
    if not 0 <= threshold <= 100:
        raise InvalidInput(f"The threshold must be between 0 and 100 (got {threshold:g}).")
    return threshold


async def launch_gate(tenant_ids: list[uuid.UUID] | None = None, *,
                      threshold: float = DEFAULT_THRESHOLD) -> LaunchGate:
    """Every workspace (None) or the given ones, each against its own question target."""
    check_threshold(threshold)
    query = Tenant.select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
    if tenant_ids is not None:
        query = query.where(Tenant.id.is_in(tenant_ids)) if tenant_ids else query.where(Tenant.id.is_null())
    verdicts = [CourseVerdict(workspace=tenant["slug"], coverage=course)
                for tenant in await query for course in await course_coverage(tenant["id"])]
    return LaunchGate(threshold=threshold, courses=verdicts)


# ---------------------------------------------------------------------------------------------
# Publish gate


async def settings_of(tenant_id: uuid.UUID) -> dict[str, Any]:
    row = await QualitySettings.select().where(QualitySettings.tenant_id == tenant_id).first()
    return row or {"questions_per_module": await questions_target_of(tenant_id), "publish_gate_blocking": False}


async def publish_gaps(tenant_id: uuid.UUID, syllabus: dict[str, Any], package: CoursePackage) -> list[Gap]:
    """The coverage gaps the version about to be published would have (its own resources, not the live
    ones: they are the same at build time)."""
    outline = msgspec.json.decode(syllabus["content"], type=SyllabusDoc)
    resources = {m.index: len(m.resources) for m in package.modules}
    course = CourseCoverage(course_id=syllabus["course_id"], syllabus_id=syllabus["id"], title=package.course.title,
                            version=0, modules=module_coverage(outline, package, await questions_target_of(tenant_id),
                                                               resources))
    return gaps([course])


def gaps_in_words(found: list[Gap]) -> str:
    return "; ".join(f"module {g.module_index} ({g.module_title}): {g.words.lower()}, {g.detail}" for g in found)


class SettingsForm(msgspec.Struct, kw_only=True):
    questions_per_module: inputs.Line(32) = ""
    publish_gate_blocking: inputs.Line(8) = ""  # a checkbox: "on" when ticked


def parse_settings(form: SettingsForm) -> tuple[int, bool]:
    raw = form.questions_per_module.strip()
    try:
        target = int(raw)
    except ValueError:
        raise InvalidInput(f"Questions per module must be a whole number (got “{raw[:40]}”).") from None
    if not 1 <= target <= 500:
        raise InvalidInput(f"Questions per module must be between 1 and 500 (got {target}).")
    return target, form.publish_gate_blocking in ("on", "true", "1", "yes")


async def save_settings(tenant_id: uuid.UUID, form: SettingsForm, *, actor: Actor) -> dict[str, Any]:
    target, blocking = parse_settings(form)
    before = await settings_of(tenant_id)
    row = (await QualitySettings.raw(
        "INSERT INTO quality_settings (id, tenant_id, questions_per_module, publish_gate_blocking, updated_by, "
        "updated_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, now()) ON CONFLICT (tenant_id) DO UPDATE SET "
        "questions_per_module = EXCLUDED.questions_per_module, publish_gate_blocking = "
        "EXCLUDED.publish_gate_blocking, updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING *",
        tenant_id, target, blocking, actor.user_id))[0]
    await audit(AuditAction.QUALITY_SETTINGS_CHANGED, actor=actor, tenant_id=tenant_id,
                entity_type="quality_settings", entity_id=row["id"],
                metadata={"questions_per_module": [before["questions_per_module"], target],
                          "publish_gate_blocking": [before["publish_gate_blocking"], blocking]})
    return row
