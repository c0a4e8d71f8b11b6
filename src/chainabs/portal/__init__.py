"""The investor portal: static pages served by the audit service, beside the API.

    GET /           index.html (a small single-page app in plain JS modules)
    GET /portal/*   the portal's own modules and styles, committed here (no build step)
    GET /vendor/*   browser files of npm packages pinned in package.json (chart.js, js-sha3),
                    served from node_modules, never copied into the repository

A fixed table maps each /vendor name to its file, so a request never becomes a path. When
node_modules is missing (no `make setup`), /vendor answers 503 with the sentence that fixes it,
and the page shows that sentence.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
NODE_MODULES = Path(__file__).resolve().parents[3] / "node_modules"

#: /vendor/<name> -> (npm package, file inside it)
VENDOR: dict[str, tuple[str, str]] = {
    "chart.umd.min.js": ("chart.js", "dist/chart.umd.min.js"),
    "sha3.mjs": ("js-sha3", "build/sha3.mjs"),
}
_NO_CACHE = {"Cache-Control": "no-cache"}


def mount(app: FastAPI, *, node_modules: Path = NODE_MODULES) -> None:
    """Serve the portal at / on `app`; the API's own routes keep their paths."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=_NO_CACHE)

    @router.get("/vendor/{name}")
    def vendor(name: str) -> Response:
        if name not in VENDOR:
            return JSONResponse({"error": f"no portal asset named {name[:80]!r}"}, status_code=404)
        package, file = VENDOR[name]
        path = node_modules / package / file
        if not path.is_file():
            return JSONResponse({"error": f"the portal needs the npm package {package!r}, which is not installed "
                                          f"in {node_modules}: run `make setup` (npm ci) and restart the service"},
                                status_code=503)
        media = "text/javascript" if name.endswith(("js", ".mjs")) else None
        return FileResponse(path, media_type=media, headers=_NO_CACHE)

    app.include_router(router)
    app.mount("/portal", StaticFiles(directory=STATIC), name="portal")
