from enum import StrEnum

from piccolo.columns import UUID, Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Role(StrEnum):
    LEARNER = "learner"
    ADMIN = "admin"
    OWNER = "owner"


ADMIN_ROLES = frozenset({Role.ADMIN.value, Role.OWNER.value})


class Tenant(Table, tablename="tenant"):
    id = UUID(primary_key=True)
    name = Varchar(length=200)
    slug = Varchar(length=80, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class User(Table, tablename="app_user"):
    id = UUID(primary_key=True)
    email = Varchar(length=320, unique=True)
    name = Varchar(length=200)
    password_hash = Varchar(length=200)
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)


class Membership(Table, tablename="membership"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    user_id = ForeignKey(User, null=False)
    role = Varchar(length=16, choices=Role)
    created_at = Timestamptz(default=TimestamptzNow())


class AuthSession(Table, tablename="auth_session"):
    # The primary key is the SHA-256 of the cookie token: a leaked table cannot be replayed as cookies.
    id = Varchar(length=64, primary_key=True)
    user_id = ForeignKey(User, null=False)
    tenant_id = ForeignKey(Tenant, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=300, default="")


class LoginFailure(Table, tablename="login_failure"):
    id = BigSerial(primary_key=True)
    email = Varchar(length=320)
    ip = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())


class Invitation(Table, tablename="invitation"):
    """An admin's offer of a role in a workspace to whoever holds the link (see README: Invitation)."""

    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    email = Varchar(length=320)
    role = Varchar(length=16, choices=Role)
    # SHA-256 of the link's token: a leaked table cannot be turned back into working links.
    token_hash = Varchar(length=64, unique=True)
    invited_by = ForeignKey(User, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    accepted_at = Timestamptz(null=True, default=None)
    accepted_by = ForeignKey(User, null=True)
    revoked_at = Timestamptz(null=True, default=None)
