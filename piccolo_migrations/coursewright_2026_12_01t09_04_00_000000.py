"""Durable generation (issue 7): QUEUED and BLOCKED items, leases, and what existing rows become.

- content_item gains QUEUED (ready, a worker will claim it) and BLOCKED (what it is made from failed);
  GENERATING can go back to QUEUED (a graceful release or a lost worker) or to BLOCKED.
- The open-slot index covers the new states, so a slot still has at most one item in play.
- Rows in flight when this runs: GENERATING items and RUNNING syllabus runs get a heartbeat from when
  they started, so the lease sweeper (not a creation-time cutoff) decides about them; lessons that were
  PENDING were already enqueued under the old rules and become QUEUED; quizzes and projects stay PENDING
  until the sweeper looks at what they wait for.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T09:04:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "durable generation: item states, lease backfill, state machine"

SQL = r"""
ALTER TABLE generation_run DROP CONSTRAINT generation_run_kind_check;
ALTER TABLE generation_run ADD CONSTRAINT generation_run_kind_check CHECK (kind IN ('SYLLABUS', 'CONTENT', 'ITEM', 'RETRY'));
ALTER TABLE content_item DROP CONSTRAINT content_item_status_check;
ALTER TABLE content_item ADD CONSTRAINT content_item_status_check CHECK (status IN
    ('PENDING', 'QUEUED', 'BLOCKED', 'GENERATING', 'DRAFT', 'FAILED', 'APPROVED', 'REJECTED', 'SUPERSEDED'));
DROP INDEX content_item_open_slot;
CREATE UNIQUE INDEX content_item_open_slot ON content_item (syllabus_id, kind, module_index, coalesce(lesson_index, 0))
    WHERE status IN ('PENDING', 'QUEUED', 'BLOCKED', 'GENERATING', 'DRAFT', 'FAILED', 'REJECTED');
-- The sweeper's scans: rows in flight only, a small part of the table.
CREATE INDEX content_item_in_flight_idx ON content_item (status, heartbeat_at)
    WHERE status IN ('PENDING', 'QUEUED', 'BLOCKED', 'GENERATING');
CREATE INDEX generation_run_in_flight_idx ON generation_run (status, heartbeat_at)
    WHERE status IN ('QUEUED', 'RUNNING');

UPDATE content_item SET claimed_at = created_at, heartbeat_at = created_at, attempt = 1
    WHERE status = 'GENERATING';
ALTER TABLE content_item DISABLE TRIGGER content_item_state_machine;
UPDATE content_item SET status = 'QUEUED', queued_at = created_at WHERE status = 'PENDING' AND kind = 'LESSON';
ALTER TABLE content_item ENABLE TRIGGER content_item_state_machine;
UPDATE generation_run SET claimed_at = started_at, heartbeat_at = coalesce(started_at, created_at), attempt = 1
    WHERE kind = 'SYLLABUS' AND status = 'RUNNING';
UPDATE generation_run SET queued_at = created_at WHERE kind = 'SYLLABUS' AND status = 'QUEUED';

CREATE OR REPLACE FUNCTION content_item_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
        (OLD.status = 'PENDING' AND NEW.status IN ('QUEUED', 'BLOCKED', 'FAILED', 'SUPERSEDED'))
        OR (OLD.status = 'BLOCKED' AND NEW.status IN ('QUEUED', 'FAILED', 'SUPERSEDED'))
        OR (OLD.status = 'QUEUED' AND NEW.status IN ('GENERATING', 'BLOCKED', 'FAILED'))
        OR (OLD.status = 'GENERATING' AND NEW.status IN ('DRAFT', 'FAILED', 'QUEUED', 'BLOCKED'))
        OR (OLD.status = 'DRAFT' AND NEW.status IN ('APPROVED', 'REJECTED', 'SUPERSEDED'))
        OR (OLD.status IN ('FAILED', 'REJECTED') AND NEW.status = 'SUPERSEDED')
    ) THEN
        RAISE EXCEPTION 'content_item %: % -> % is not a valid transition', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
