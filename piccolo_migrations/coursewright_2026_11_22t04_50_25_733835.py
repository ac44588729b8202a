"""Authoring invariants in the database (SPEC section 0, invariants 1 and 2).

- Content is generated only from an APPROVED syllabus: inserts into content_item, and CONTENT/ITEM
  generation runs, are refused otherwise.
- Generated text is written once: a syllabus row is born with its content; a content item's content is
  set once (PENDING/GENERATING -> DRAFT) and never changes again.
- Approved rows are frozen: no UPDATE of any column, no DELETE. An approval must carry the approver,
  the time, and the hash of exactly the content it approves.
- Status moves only along the state machines in app/authoring/README.md.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T04:50:25:731995"
VERSION = "1.38.0"
DESCRIPTION = "authoring triggers: approved-only generation, write-once content, frozen approvals"

SQL = r"""
ALTER TABLE syllabus ADD CONSTRAINT syllabus_status_check
    CHECK (status IN ('DRAFT', 'APPROVED', 'REJECTED', 'SUPERSEDED'));
ALTER TABLE syllabus ADD CONSTRAINT syllabus_course_revision_key UNIQUE (course_id, revision);
ALTER TABLE syllabus ADD CONSTRAINT syllabus_approval_complete CHECK (
    status <> 'APPROVED' OR (approved_by IS NOT NULL AND approved_at IS NOT NULL AND approved_hash = content_hash));
CREATE INDEX syllabus_tenant_idx ON syllabus (tenant_id, created_at DESC);
CREATE INDEX course_tenant_idx ON course (tenant_id, created_at DESC);

ALTER TABLE content_item ADD CONSTRAINT content_item_status_check
    CHECK (status IN ('PENDING', 'GENERATING', 'DRAFT', 'FAILED', 'APPROVED', 'REJECTED', 'SUPERSEDED'));
ALTER TABLE content_item ADD CONSTRAINT content_item_kind_check CHECK (kind IN ('LESSON', 'QUIZ', 'PROJECT'));
ALTER TABLE content_item ADD CONSTRAINT content_item_slot_check
    CHECK ((kind = 'PROJECT') = (lesson_index IS NULL));
ALTER TABLE content_item ADD CONSTRAINT content_item_has_content CHECK (
    status NOT IN ('DRAFT', 'APPROVED', 'REJECTED') OR (content IS NOT NULL AND content_hash IS NOT NULL));
ALTER TABLE content_item ADD CONSTRAINT content_item_approval_complete CHECK (
    status <> 'APPROVED' OR (approved_by IS NOT NULL AND approved_at IS NOT NULL AND approved_hash = content_hash));
-- At most one item per slot is still in play (not approved, not superseded).
CREATE UNIQUE INDEX content_item_open_slot ON content_item (syllabus_id, kind, module_index, coalesce(lesson_index, 0))
    WHERE status IN ('PENDING', 'GENERATING', 'DRAFT', 'FAILED', 'REJECTED');
CREATE INDEX content_item_review_idx ON content_item (tenant_id, syllabus_id, module_index, status);
CREATE INDEX content_item_run_idx ON content_item (run_id);

ALTER TABLE generation_run ADD CONSTRAINT generation_run_kind_check CHECK (kind IN ('SYLLABUS', 'CONTENT', 'ITEM'));
ALTER TABLE generation_run ADD CONSTRAINT generation_run_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'PARTIAL', 'FAILED'));
CREATE INDEX generation_run_course_idx ON generation_run (course_id, created_at DESC);
CREATE INDEX ai_usage_tenant_day_idx ON ai_usage (tenant_id, created_at);

-- Invariant 1: no approved syllabus, no content.
CREATE FUNCTION require_approved_syllabus() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    syllabus_status text;
    syllabus_tenant uuid;
BEGIN
    IF TG_TABLE_NAME = 'generation_run' AND NEW.kind = 'SYLLABUS' THEN
        RETURN NEW;
    END IF;
    SELECT status, tenant_id INTO syllabus_status, syllabus_tenant FROM syllabus WHERE id = NEW.syllabus_id;
    IF syllabus_status IS DISTINCT FROM 'APPROVED' THEN
        RAISE EXCEPTION '%: content can only be generated from an APPROVED syllabus (syllabus % is %)',
            TG_TABLE_NAME, NEW.syllabus_id, coalesce(syllabus_status, 'missing')
            USING ERRCODE = 'check_violation';
    END IF;
    IF syllabus_tenant <> NEW.tenant_id THEN
        RAISE EXCEPTION '%: syllabus % belongs to another tenant', TG_TABLE_NAME, NEW.syllabus_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER content_item_requires_approved_syllabus BEFORE INSERT ON content_item
    FOR EACH ROW EXECUTE FUNCTION require_approved_syllabus();
CREATE TRIGGER generation_run_requires_approved_syllabus BEFORE INSERT ON generation_run
    FOR EACH ROW EXECUTE FUNCTION require_approved_syllabus();

CREATE FUNCTION reject_approved_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'APPROVED' THEN
        RAISE EXCEPTION '% %: approved rows cannot be deleted', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER syllabus_no_approved_delete BEFORE DELETE ON syllabus
    FOR EACH ROW EXECUTE FUNCTION reject_approved_delete();
CREATE TRIGGER content_item_no_approved_delete BEFORE DELETE ON content_item
    FOR EACH ROW EXECUTE FUNCTION reject_approved_delete();

CREATE FUNCTION syllabus_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'APPROVED' THEN
        RAISE EXCEPTION 'syllabus %: an approved syllabus is immutable', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.id, NEW.tenant_id, NEW.course_id, NEW.revision, NEW.content, NEW.content_hash, NEW.generation,
        NEW.run_id, NEW.supersedes_id, NEW.instruction, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.course_id, OLD.revision, OLD.content, OLD.content_hash, OLD.generation,
        OLD.run_id, OLD.supersedes_id, OLD.instruction, OLD.created_by, OLD.created_at) THEN
        RAISE EXCEPTION 'syllabus %: content and identity columns are immutable', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'DRAFT' AND NEW.status IN ('APPROVED', 'REJECTED', 'SUPERSEDED'))
        OR (OLD.status = 'REJECTED' AND NEW.status = 'SUPERSEDED')
    ) THEN
        RAISE EXCEPTION 'syllabus %: % -> % is not a valid transition', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER syllabus_state_machine BEFORE UPDATE ON syllabus
    FOR EACH ROW EXECUTE FUNCTION syllabus_guard();

CREATE FUNCTION content_item_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'APPROVED' THEN
        RAISE EXCEPTION 'content_item %: approved content is immutable', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.id, NEW.tenant_id, NEW.syllabus_id, NEW.run_id, NEW.kind, NEW.module_index, NEW.lesson_index,
        NEW.title, NEW.supersedes_id, NEW.instruction, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.syllabus_id, OLD.run_id, OLD.kind, OLD.module_index, OLD.lesson_index,
        OLD.title, OLD.supersedes_id, OLD.instruction, OLD.created_by, OLD.created_at) THEN
        RAISE EXCEPTION 'content_item %: identity columns are immutable', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    -- Generated text is written once, when the item leaves GENERATING.
    IF OLD.content IS NOT NULL AND (NEW.content, NEW.content_hash, NEW.generation, NEW.generated_at)
           IS DISTINCT FROM (OLD.content, OLD.content_hash, OLD.generation, OLD.generated_at) THEN
        RAISE EXCEPTION 'content_item %: generated content is immutable', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'PENDING' AND NEW.status IN ('GENERATING', 'FAILED', 'SUPERSEDED'))
        OR (OLD.status = 'GENERATING' AND NEW.status IN ('DRAFT', 'FAILED'))
        OR (OLD.status = 'DRAFT' AND NEW.status IN ('APPROVED', 'REJECTED', 'SUPERSEDED'))
        OR (OLD.status IN ('FAILED', 'REJECTED') AND NEW.status = 'SUPERSEDED')
    ) THEN
        RAISE EXCEPTION 'content_item %: % -> % is not a valid transition', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER content_item_state_machine BEFORE UPDATE ON content_item
    FOR EACH ROW EXECUTE FUNCTION content_item_guard();
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
