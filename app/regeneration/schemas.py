"""msgspec types at the regeneration boundaries: a job's instruction, its create form, the cost estimate."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

import msgspec

INSTRUCTION_MAX = 2000
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=INSTRUCTION_MAX)]
Phrase = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Instruction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a person asks the model to change (stored as the job's `instruction` JSON). `evidence` is the
    suggestion's evidence when the job came from one; it goes into the prompt as data, never as orders."""

    text: Text
    evidence: dict[str, Any] | None = None
    keep: Annotated[list[Phrase], msgspec.Meta(max_length=20)] = []  # things the revision must not change
    tone: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class JobCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /api/admin/regeneration-jobs."""

    target_id: uuid.UUID
    instruction: Instruction
    suggestion_id: uuid.UUID | None = None


class CostEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """What triggering a job would cost, and where the workspace stands this month (the cost guard)."""

    estimated_usd: Decimal
    month_spend_usd: Decimal
    budget_usd: Decimal | None  # None: no budget set, no limit
    would_exceed: bool
    queued_usd: Decimal = Decimal(0)  # estimates of jobs triggered but not yet running
    input_tokens: int = 0  # the estimate's basis
    output_tokens: int = 0
    model: str = ""

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.budget_usd is None else self.budget_usd - self.month_spend_usd - self.queued_usd


class JobError(msgspec.Struct, frozen=True, kw_only=True):
    """A FAILED job's `error` JSON: a code for machines, a message in words for people."""

    code: str
    message: str
    details: list[str] = []
