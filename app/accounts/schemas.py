"""Form payloads. Fields default to "" so a half-filled form reaches the service, which answers with
a readable message instead of a generic validation error. Bounds and the no-control-characters rule
come from app.web.inputs."""

from typing import Annotated

import msgspec

from app.web import inputs


class LoginForm(msgspec.Struct):
    # Only bounded, not checked for control characters: a login with a NUL must reach the service and
    # count as a failed attempt (accounts.services.authenticate neutralises it), not bypass throttling.
    email: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    password: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    next: inputs.Line(2000) = ""


class TenantSwitchForm(msgspec.Struct):
    tenant_id: inputs.UUIDText = ""


class MemberInvite(msgspec.Struct):
    email: inputs.Email = ""
    name: inputs.PersonName = ""
    role: inputs.Role = "learner"
    password: inputs.Password = ""


class RoleUpdate(msgspec.Struct):
    role: inputs.Role = ""
