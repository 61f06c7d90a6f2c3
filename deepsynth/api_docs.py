"""Interactive API docs (Swagger UI) served from the installed ``swagger-ui-bundle`` package: no CDN.

FastAPI's default ``/docs`` page loads Swagger UI's script and styles from a CDN, so it is blank on a
machine without network access. Apps built with ``docs_url=None, redoc_url=None`` call
:func:`mount_offline_docs` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

#: The OpenAPI version the schema is published as: the bundled Swagger UI (4.x) renders 3.0 documents;
#: FastAPI's schemas use nothing of 3.1 that 3.0 readers refuse.
OPENAPI_VERSION = "3.0.3"


def mount_offline_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Serve Swagger UI at ``docs_url`` with its assets under ``{docs_url}/assets`` from the local package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    assets = f"{docs_url}/assets"
    app.openapi_version = OPENAPI_VERSION
    app.mount(assets, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get(docs_url, include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )
