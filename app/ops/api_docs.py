"""The API reference at /schema: Swagger UI served from our own static files, reading /schema/openapi.json.

Litestar's render plugins load their UI from a CDN and start it with an inline script; both are refused
here (no third-party hosts, and the Content-Security-Policy runs only our own script files). The UI comes
from the swagger-ui-dist npm package, copied into static/vendor by `make vendor` like htmx, and
static/api-docs.js starts it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

SWAGGER_UI = "/static/vendor/swagger-ui"


class StaticSwaggerRenderPlugin(OpenAPIRenderPlugin):
    def __init__(self, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        spec_url = escape(self.get_openapi_json_route(request))
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  <link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
  <script src="{SWAGGER_UI}/swagger-ui-bundle.js" defer></script>
  <script src="/static/api-docs.js" defer></script>
</head>
<body>
  <div id="swagger-ui" data-spec-url="{spec_url}"></div>
</body>
</html>
""".encode()


RENDER_PLUGINS = [StaticSwaggerRenderPlugin(), JsonRenderPlugin()]
