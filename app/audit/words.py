"""Audit actions and the things they name, in words for people. The one mapping every page uses (the log, an
entry, the filters); `tests/audit/test_audit_words.py` fails when an AuditAction has no words here."""

from __future__ import annotations

from app.audit.actions import AuditAction

ACTION_WORDS: dict[AuditAction, str] = {
    AuditAction.USER_LOGIN: "Signed in",
    AuditAction.USER_LOGIN_FAILED: "Sign-in failed",
    AuditAction.USER_LOGOUT: "Signed out",
    AuditAction.USER_CREATED: "Account created",
    AuditAction.MEMBERSHIP_CREATED: "Member added",
    AuditAction.MEMBERSHIP_REMOVED: "Member removed",
    AuditAction.ROLE_CHANGED: "Role changed",
    AuditAction.TENANT_CREATED: "Workspace created",
    AuditAction.TENANT_SWITCHED: "Workspace switched",
    AuditAction.INVITATION_CREATED: "Invitation sent",
    AuditAction.INVITATION_ACCEPTED: "Invitation accepted",
    AuditAction.INVITATION_REVOKED: "Invitation revoked",
    AuditAction.JOB_REQUESTED: "Background job requested",
    AuditAction.COURSE_REQUESTED: "Course requested",
    AuditAction.SYLLABUS_REGENERATION_REQUESTED: "Syllabus redraft requested",
    AuditAction.SYLLABUS_APPROVED: "Syllabus approved",
    AuditAction.SYLLABUS_REJECTED: "Syllabus rejected",
    AuditAction.SYLLABUS_EDITED_BY_HAND: "Syllabus outline edited by hand",
    AuditAction.CONTENT_GENERATION_REQUESTED: "Content generation requested",
    AuditAction.CONTENT_REGENERATION_REQUESTED: "Content regeneration requested",
    AuditAction.CONTENT_EDITED_BY_HAND: "Content edited by hand",
    AuditAction.FAILED_CONTENT_REGENERATION_REQUESTED: "Failed content regenerated",
    AuditAction.SYLLABUS_RUN_RETRIED: "Syllabus draft retried",
    AuditAction.COURSE_BRIEF_UPDATED: "Course brief changed",
    AuditAction.CONTENT_APPROVED: "Content approved",
    AuditAction.CONTENT_REJECTED: "Content rejected",
    AuditAction.PACKAGE_PUBLISHED: "Course version published",
    AuditAction.PACKAGE_ARCHIVED: "Course version archived",
    AuditAction.LESSON_COMPLETED: "Lesson completed",
    AuditAction.COURSE_VERSION_UPGRADED: "Learner moved to a newer version",
    AuditAction.PURCHASE_CREATED: "Course purchased",
    AuditAction.ENROLLMENT_CREATED: "Learner enrolled",
    AuditAction.EXPORT_PDF: "PDF exported",
    AuditAction.EXPORT_SCORM: "SCORM package exported",
    AuditAction.EXPORT_HTML: "HTML site exported",
    AuditAction.PRODUCT_CREATED: "Product created",
    AuditAction.PRODUCT_UPDATED: "Product changed",
    AuditAction.CHECKOUT_STARTED: "Checkout started",
    AuditAction.PURCHASE_EXPIRED: "Checkout expired unpaid",
    AuditAction.PURCHASE_REFUNDED: "Purchase refunded",
    AuditAction.ENROLLMENT_REVOKED: "Access removed",
    AuditAction.BILLING_EVENT_REJECTED: "Payment event rejected",
    AuditAction.BILLING_EVENT_REPLAYED: "Payment event replayed",
    AuditAction.ANALYTICS_JOB_RUN: "Analytics computed",
    AuditAction.ANALYTICS_DATA_PRUNED: "Old analytics data removed",
    AuditAction.ANALYTICS_SETTINGS_CHANGED: "Signal thresholds changed",
    AuditAction.ANALYTICS_SIGNAL_STATUS_CHANGED: "Signal marked",
    AuditAction.CONTENT_SUGGESTION_CREATED: "Content suggestion made",
    AuditAction.CONTENT_SUGGESTION_ACCEPTED: "Content suggestion accepted",
    AuditAction.CONTENT_SUGGESTION_DISMISSED: "Content suggestion dismissed",
    AuditAction.REGEN_JOB_CREATED: "Regeneration job created",
    AuditAction.REGEN_JOB_TRIGGERED: "Regeneration job triggered",
    AuditAction.REGEN_JOB_LOCKED: "Regeneration job locked",
    AuditAction.REGEN_JOB_STARTED: "Regeneration job started",
    AuditAction.REGEN_JOB_COMPLETED: "Regeneration job finished",
    AuditAction.REGEN_JOB_FAILED: "Regeneration job failed",
    AuditAction.RETRY_INTENT_CREATED: "Retry requested",
    AuditAction.RETRY_INTENT_APPROVED: "Retry approved",
    AuditAction.RETRY_INTENT_EXECUTED: "Retry carried out",
    AuditAction.LLM_BUDGET_CHANGED: "Monthly AI budget changed",
    AuditAction.RETRY_INTENT_REJECTED: "Retry refused",
    AuditAction.SPOT_CHECK_LOGGED: "AI spot check logged",
    AuditAction.SPOT_CHECK_UPDATED: "AI spot check edited",
    AuditAction.SPOT_CHECK_DELETED: "AI spot check deleted",
    AuditAction.EXTERNAL_RESOURCE_ADDED: "External resource added",
    AuditAction.EXTERNAL_RESOURCE_REMOVED: "External resource removed",
    AuditAction.QUALITY_SETTINGS_CHANGED: "Coverage settings changed",
}

# The `entity_type` values audit rows carry, in words.
ENTITY_WORDS = {
    "ai_spot_check": "AI spot check",
    "external_resource": "External resource",
    "quality_settings": "Coverage settings",
    "tenant": "Workspace",
    "user": "Person",
    "membership": "Member",
    "invitation": "Invitation",
    "course": "Course",
    "syllabus": "Syllabus",
    "content_item": "Content item",
    "generation_run": "Generation run",
    "background_job": "Background job",
    "course_package": "Course version",
    "enrollment": "Enrollment",
    "package_export": "Export",
    "analytics": "Analytics",
    "analytics_signal": "Signal",
    "content_suggestion": "Suggestion",
    "regeneration_job": "Regeneration job",
    "retry_intent": "Retry request",
    "llm_budget": "AI budget",
    "product": "Product",
    "purchase": "Purchase",
    "billing_event": "Payment event",
}


def action_words(action: str) -> str:
    """The words of an action; an action no longer in AuditAction (an old row) still reads as words."""
    try:
        return ACTION_WORDS[AuditAction(action)]
    except (KeyError, ValueError):
        return action.replace("_", " ").capitalize()


def entity_words(entity_type: str) -> str:
    return ENTITY_WORDS.get(entity_type, entity_type.replace("_", " ").capitalize())
