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


# Invitation forms are plain strings on purpose: accounts.services checks them (control characters,
# the lengths of the columns) so that a bad value re-shows the form with the input kept and a message,
# instead of a generic 400 page. The request body limit bounds their size.
class InvitationCreate(msgspec.Struct):
    email: str = ""
    role: str = "learner"


class InvitationAnswer(msgspec.Struct):
    action: str = ""
    email: str = ""
    password: str = ""
    name: str = ""


class RoleUpdate(msgspec.Struct):
    role: inputs.Role = ""
