from piccolo.columns import JSONB, UUID, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AuditLog(Table, tablename="audit_log"):
    # Insert-only (a trigger rejects UPDATE/DELETE/TRUNCATE). No foreign keys on purpose: an audit
    # write must never fail because of the row it describes, and it outlives that row.
    id = BigSerial(primary_key=True)
    tenant_id = UUID(null=True, default=None)
    actor_id = UUID(null=True, default=None)
    actor_email = Varchar(length=320, null=True, default=None)
    action = Varchar(length=64)
    entity_type = Varchar(length=64, default="")
    entity_id = Varchar(length=64, default="")
    metadata = JSONB(default="{}")
    ip = Varchar(length=64, default="")
    request_id = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
