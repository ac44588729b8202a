"""Suggestions: the admins' list, detail, accept and dismiss (pages and JSON APIs)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
