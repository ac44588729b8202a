"""The one Piccolo app; its migrations live in the top-level piccolo_migrations/ folder."""

from piccolo.conf.apps import AppConfig

from app.accounts.tables import AuthSession, Invitation, LoginFailure, Membership, Tenant, User
from app.analytics.tables import AnalyticsSettings, DailyAggregate, JobLock, Signal
from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem, Course, GenerationRun, Syllabus
from app.billing.tables import BillingEvent, Product, Purchase
from app.db import APP_NAME, MIGRATIONS_DIR
from app.exports.tables import ExportRequest, PackageExport
from app.insights.tables import ContentSuggestion
from app.jobs.tables import BackgroundJob, TenantStats
from app.llm.tables import AIUsage
from app.player.tables import Enrollment, LessonProgress, QuestionStat, QuizAttempt
from app.publishing.tables import CoursePackageRow
from app.quality.tables import ExternalResource, QualityReport, QualitySettings, SpotCheck
from app.regeneration.tables import LlmBudget, RegenerationJob, RegenerationOutput, RetryIntent

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(MIGRATIONS_DIR),
    table_classes=[
        Tenant, User, Membership, AuthSession, LoginFailure, AuditLog, BackgroundJob, TenantStats,
        Course, GenerationRun, Syllabus, ContentItem, AIUsage, CoursePackageRow,
        Enrollment, LessonProgress, QuizAttempt, QuestionStat, Invitation, PackageExport, ExportRequest,
        Product, Purchase, BillingEvent, DailyAggregate, Signal, AnalyticsSettings, JobLock,
        ContentSuggestion, RegenerationJob, RegenerationOutput, RetryIntent, LlmBudget,
        ExternalResource, QualityReport, SpotCheck, QualitySettings,
    ],
    migration_dependencies=[],
    commands=[],
)
