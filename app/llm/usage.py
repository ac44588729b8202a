"""AI usage and cost (O5): what the ai_usage rows add up to, per tenant."""

from __future__ import annotations

import uuid
from typing import Any

from app.llm.tables import AIUsage

USAGE_SQL = """
SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date AS day, operation, model,
       count(*) AS calls, count(*) FILTER (WHERE NOT success) AS failures,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
       round(avg(duration_ms)) AS avg_ms
FROM ai_usage
WHERE tenant_id = {} AND created_at >= now() - make_interval(days => {})
GROUP BY 1, 2, 3
ORDER BY 1 DESC, 2, 3
"""


async def usage_by_day(tenant_id: uuid.UUID, days: int = 30) -> list[dict[str, Any]]:
    return await AIUsage.raw(USAGE_SQL, tenant_id, days)


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("calls", "failures", "input_tokens", "output_tokens", "cost_usd")
    return {key: sum(row[key] or 0 for row in rows) for key in keys}
