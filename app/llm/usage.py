"""AI usage and cost (O5): what the ai_usage rows add up to, per tenant.

Rows are grouped by the model we asked for, so one model's successes and failures share a line whatever
dated snapshot answered; the answering names are listed beside it. A row is written before its call
and finished after it: one still unfinished after lost_after_seconds() belongs to a call whose worker
died. It counts as a failure ("cut off (worker lost)") and its estimated input cost stays in the total.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.llm.tables import AIUsage
from app.settings import Settings, get_settings

USAGE_SQL = """
WITH call AS (
    SELECT *, finished_at IS NULL AND created_at < now() - make_interval(secs => {}) AS lost
    FROM ai_usage
    WHERE tenant_id = {} AND created_at >= now() - make_interval(days => {})
)
SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date AS day, operation, model,
       string_agg(DISTINCT response_model, ', ' ORDER BY response_model) AS response_models,
       count(*) AS calls, count(*) FILTER (WHERE lost OR (finished_at IS NOT NULL AND NOT success)) AS failures,
       count(*) FILTER (WHERE lost) AS lost, count(*) FILTER (WHERE finished_at IS NULL AND NOT lost) AS running,
       sum(http_attempts) AS http_attempts, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cost_usd) AS cost_usd, round(avg(duration_ms) FILTER (WHERE finished_at IS NOT NULL)) AS avg_ms
FROM call
GROUP BY 1, 2, 3
ORDER BY 1 DESC, 2, 3
"""


def lost_after_seconds(settings: Settings) -> float:
    # Longer than one call can legitimately take: every SDK attempt timing out, plus a minute of backoff.
    return max(300.0, settings.llm_timeout_seconds * (settings.llm_max_retries + 1) + 60)


async def usage_by_day(tenant_id: uuid.UUID, days: int = 30) -> list[dict[str, Any]]:
    return await AIUsage.raw(USAGE_SQL, lost_after_seconds(get_settings()), tenant_id, days)


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("calls", "failures", "lost", "running", "http_attempts", "input_tokens", "output_tokens", "cost_usd")
    return {key: sum(row[key] or 0 for row in rows) for key in keys}
