"""Form payloads. Fields default to "" so a half-filled form reaches the service, which answers with
a readable message instead of a generic validation error."""

import msgspec


class LoginForm(msgspec.Struct):
    email: str = ""
    password: str = ""
    next: str = ""


class TenantSwitchForm(msgspec.Struct):
    tenant_id: str = ""


class MemberInvite(msgspec.Struct):
    email: str = ""
    name: str = ""
    role: str = "learner"
    password: str = ""


class RoleUpdate(msgspec.Struct):
    role: str = ""
