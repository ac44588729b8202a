"""Analytics: the event type enum, analytics_event partitioned by month (with the functions that create
partitions ahead and drop expired ones), the aggregate and signal keys, the signal's insert-only guard, and the
database side of invariant 7: while a transaction says it is analytics (`SET LOCAL coursewright.analytics =
'on'`), every statement that writes a content, package or progress table is refused."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T17:00:15:000000"
VERSION = "1.38.0"
DESCRIPTION = "analytics: partitioned events, keys, guards, observe-only triggers"

SQL = r"""
CREATE TYPE analytics_event_type AS ENUM ('course_viewed', 'enrolled', 'purchased', 'lesson_viewed',
    'lesson_completed', 'quiz_attempted', 'quiz_passed', 'course_completed');

-- No primary key and few indexes on purpose: rows are written in bulk (COPY) and read only by the nightly
-- rollup, one whole day at a time, every type in one pass: a BRIN index on created_at (rows arrive in time
-- order) finds the day for a fraction of a btree's cost to ingestion, so there is no (event_type, created_at)
-- btree; (course_id, created_at) serves one course's backfill. Partitions are created ahead by
-- analytics_ensure_partitions (the job and the migration), never by a request.
CREATE TABLE analytics_event (
    tenant_id uuid NOT NULL,
    user_id uuid,
    course_id uuid NOT NULL,
    package_version integer NOT NULL DEFAULT 0,
    lesson_index integer NOT NULL DEFAULT 0,
    event_type analytics_event_type NOT NULL,
    time_on_page_ms integer,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    client_ts timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_event_time_sane CHECK (time_on_page_ms IS NULL OR time_on_page_ms BETWEEN 0 AND 86400000),
    CONSTRAINT analytics_event_lesson_sane CHECK (lesson_index >= 0)
) PARTITION BY RANGE (created_at);
CREATE INDEX analytics_event_created_brin ON analytics_event USING brin (created_at);
CREATE INDEX analytics_event_course_created_idx ON analytics_event (course_id, created_at);

-- The monthly partitions from `months_back` months before this one to `months_ahead` after it; returns the
-- names it created.
CREATE FUNCTION analytics_ensure_partitions(months_back integer, months_ahead integer) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    month date := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => months_back))::date;
    name text;
BEGIN
    FOR i IN 0..(months_back + months_ahead) LOOP
        name := format('analytics_event_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF analytics_event FOR VALUES FROM (%L) TO (%L)', name,
                           month::timestamptz, (month + interval '1 month')::timestamptz);
            RETURN NEXT name;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
END $$;

-- Drops whole partitions that end on or before `cutoff`; returns each one with the rows it held.
CREATE FUNCTION analytics_drop_partitions_before(cutoff timestamptz)
RETURNS TABLE (partition_name text, row_count bigint) LANGUAGE plpgsql AS $$
DECLARE
    part record;
    upper_bound timestamptz;
BEGIN
    FOR part IN
        SELECT c.relname AS relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'analytics_event'::regclass ORDER BY c.relname
    LOOP
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper_bound IS NOT NULL AND upper_bound <= cutoff THEN
            partition_name := part.relname;
            EXECUTE format('SELECT count(*) FROM %I', part.relname) INTO row_count;
            EXECUTE format('DROP TABLE %I', part.relname);
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;

SELECT analytics_ensure_partitions(1, 3);

ALTER TABLE analytics_daily_aggregate ADD CONSTRAINT analytics_daily_aggregate_key
    UNIQUE (course_id, package_version, day, lesson_index);
CREATE INDEX analytics_daily_aggregate_tenant_idx ON analytics_daily_aggregate (tenant_id, course_id, day);

ALTER TABLE analytics_signal ADD CONSTRAINT analytics_signal_once_a_day
    UNIQUE (course_id, signal_type, lesson_index, day);
ALTER TABLE analytics_signal ADD CONSTRAINT analytics_signal_status_known
    CHECK (status IN ('OPEN', 'ACKNOWLEDGED', 'RESOLVED'));
ALTER TABLE analytics_signal ADD CONSTRAINT analytics_signal_severity_known CHECK (severity IN ('low', 'medium', 'high'));
CREATE INDEX analytics_signal_tenant_idx ON analytics_signal (tenant_id, day DESC);

ALTER TABLE analytics_settings ADD CONSTRAINT analytics_settings_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenant (id);
ALTER TABLE analytics_settings ADD CONSTRAINT analytics_settings_rates CHECK (
    drop_off_rate BETWEEN 0 AND 1 AND quiz_pass_rate BETWEEN 0 AND 1 AND refund_rate BETWEEN 0 AND 1
    AND engagement_rate BETWEEN 0 AND 1 AND min_learners >= 1 AND min_attempts >= 1 AND min_purchases >= 1
    AND window_days BETWEEN 1 AND 90);

CREATE FUNCTION analytics_signal_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Retention (180 days) is the only deleter, and says so.
        IF current_setting('coursewright.analytics_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'analytics_signal %: signals are kept (retention removes them after 180 days)', OLD.id;
    END IF;
    IF (to_jsonb(NEW) - 'status') <> (to_jsonb(OLD) - 'status') THEN
        RAISE EXCEPTION 'analytics_signal %: only its status changes', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER analytics_signal_guard BEFORE UPDATE OR DELETE ON analytics_signal
    FOR EACH ROW EXECUTE FUNCTION analytics_signal_guard();

-- Invariant 7, in the database: analytics code marks its transactions, and content, package and progress
-- tables refuse every write statement inside them.
CREATE FUNCTION analytics_observes_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('coursewright.analytics', true) = 'on' THEN
        RAISE EXCEPTION 'analytics observes only: % on % refused (invariant 7)', TG_OP, TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$;
DO $$
DECLARE
    target text;
BEGIN
    FOREACH target IN ARRAY ARRAY['course', 'syllabus', 'content_item', 'generation_run', 'course_package',
                                  'enrollment', 'lesson_progress', 'quiz_attempt', 'question_stat', 'product',
                                  'purchase'] LOOP
        EXECUTE format('CREATE TRIGGER analytics_observes_only BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION analytics_observes_only()', target);
    END LOOP;
END $$;
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
