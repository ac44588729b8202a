from enum import StrEnum

from piccolo.columns import UUID, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant
from app.authoring.tables import Course, Syllabus


class PackageStatus(StrEnum):
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class CoursePackageRow(Table, tablename="course_package"):
    # Insert-only but for status PUBLISHED -> ARCHIVED (trigger). The document is stored as the exact
    # canonical bytes (text, not jsonb, which would reorder keys), so exports reproduce it byte for byte.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = ForeignKey(Course, null=False)
    syllabus_id = ForeignKey(Syllabus, null=False)
    version = Integer()
    status = Varchar(length=16, choices=PackageStatus, default=PackageStatus.PUBLISHED.value)
    title = Varchar(length=200)
    document = Text()
    content_hash = Varchar(length=64)
    size_bytes = Integer()
    lesson_count = Integer()
    published_by = UUID(null=True, default=None)
    published_at = Timestamptz(default=TimestamptzNow())
    archived_by = UUID(null=True, default=None)
    archived_at = Timestamptz(null=True, default=None)
