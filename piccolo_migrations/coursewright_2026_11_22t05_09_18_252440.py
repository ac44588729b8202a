"""Publishing and player invariants.

- course_package is insert-only except status PUBLISHED -> ARCHIVED (with who and when); no DELETE,
  no TRUNCATE; (syllabus_id, version) is unique and versions are positive.
- A package can only be published from an APPROVED syllabus of the same tenant.
- Learner rows belong to the tenant of the package they read; one enrollment per learner and course.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T05:09:18:251176"
VERSION = "1.38.0"
DESCRIPTION = "publishing and player constraints and triggers"

SQL = r"""
ALTER TABLE course_package ADD CONSTRAINT course_package_syllabus_version_key UNIQUE (syllabus_id, version);
ALTER TABLE course_package ADD CONSTRAINT course_package_version_positive CHECK (version > 0);
ALTER TABLE course_package ADD CONSTRAINT course_package_status_check CHECK (status IN ('PUBLISHED', 'ARCHIVED'));
ALTER TABLE course_package ADD CONSTRAINT course_package_archive_complete CHECK (
    (status = 'ARCHIVED') = (archived_at IS NOT NULL));
CREATE INDEX course_package_tenant_idx ON course_package (tenant_id, syllabus_id, version DESC);

CREATE FUNCTION course_package_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM syllabus s WHERE s.id = NEW.syllabus_id AND s.status = 'APPROVED'
                       AND s.tenant_id = NEW.tenant_id) THEN
            RAISE EXCEPTION 'course_package: syllabus % is not an approved syllabus of this tenant', NEW.syllabus_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'course_package is insert-only: DELETE is not allowed' USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.id, NEW.tenant_id, NEW.course_id, NEW.syllabus_id, NEW.version, NEW.title, NEW.document,
        NEW.content_hash, NEW.size_bytes, NEW.lesson_count, NEW.published_by, NEW.published_at)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.course_id, OLD.syllabus_id, OLD.version, OLD.title, OLD.document,
        OLD.content_hash, OLD.size_bytes, OLD.lesson_count, OLD.published_by, OLD.published_at) THEN
        RAISE EXCEPTION 'course_package %: a published package never changes; publish a new version', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NOT (OLD.status = 'PUBLISHED' AND NEW.status = 'ARCHIVED') THEN
        RAISE EXCEPTION 'course_package %: % -> % is not a valid transition (only PUBLISHED -> ARCHIVED)',
            OLD.id, OLD.status, NEW.status USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER course_package_guard BEFORE INSERT OR UPDATE OR DELETE ON course_package
    FOR EACH ROW EXECUTE FUNCTION course_package_guard();
CREATE TRIGGER course_package_no_truncate BEFORE TRUNCATE ON course_package
    FOR EACH STATEMENT EXECUTE FUNCTION coursewright_reject_change();

ALTER TABLE enrollment ADD CONSTRAINT enrollment_user_course_key UNIQUE (user_id, syllabus_id);
CREATE INDEX enrollment_tenant_user_idx ON enrollment (tenant_id, user_id);
ALTER TABLE lesson_progress ADD CONSTRAINT lesson_progress_slot_key UNIQUE (enrollment_id, module_index, lesson_index);
ALTER TABLE lesson_progress ADD CONSTRAINT lesson_progress_via_check CHECK (completed_via IN ('BUTTON', 'QUIZ'));
CREATE INDEX quiz_attempt_enrollment_idx ON quiz_attempt (enrollment_id, created_at DESC);
CREATE INDEX quiz_attempt_quiz_idx ON quiz_attempt (quiz_item_id);
ALTER TABLE question_stat ADD CONSTRAINT question_stat_question_key UNIQUE (quiz_item_id, question_index);

-- A learner's enrollment points at a package of its own tenant and course.
CREATE FUNCTION enrollment_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM course_package p WHERE p.id = NEW.package_id AND p.tenant_id = NEW.tenant_id
                   AND p.syllabus_id = NEW.syllabus_id) THEN
        RAISE EXCEPTION 'enrollment: package % is not a version of this course in this tenant', NEW.package_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER enrollment_guard BEFORE INSERT OR UPDATE OF package_id ON enrollment
    FOR EACH ROW EXECUTE FUNCTION enrollment_guard();
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
