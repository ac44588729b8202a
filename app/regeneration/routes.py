"""Regeneration jobs and retry intents: admin pages and JSON APIs. Routes never run a generator (invariant 4)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
