"""The investor portal: static pages served by the audit service, beside the API.

    GET /           index.html (a small single-page app in plain JS modules)
    GET /portal/*   the portal's own modules and styles, committed here (no build step)
    GET /vendor/*   browser files of npm packages pinned in package.json (chart.js, js-sha3),
                    served from node_modules (chainabs.paths: the checkout's, or
                    $CHAINABS_NODE_MODULES), never copied into the repository

A fixed table maps each /vendor name to its file, so a request never becomes a path. When
node_modules is missing (no `make setup`), /vendor answers 503 with the sentence that fixes it,
and the page shows that sentence.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from chainabs import paths

#: /vendor/<name> -> (npm package, file inside it)
VENDOR: dict[str, tuple[str, str]] = {
    "chart.umd.min.js": ("chart.js", "dist/chart.umd.min.js"),
    "sha3.mjs": ("js-sha3", "build/sha3.mjs"),
}
_NO_CACHE = {"Cache-Control": "no-cache"}


def _missing(package: str, node_modules: Path | None) -> str:
    if node_modules is None:
        return (f"the portal needs the npm package {package!r} and this install has no node_modules: run "
                f"`make setup` (npm ci) in a checkout, set {paths.NODE_MODULES_ENV} to its node_modules "
                f"and restart the service")
    return (f"the portal needs the npm package {package!r}, which is not installed in {node_modules}: "
            f"run `make setup` (npm ci) and restart the service")


def mount(app: FastAPI, *, node_modules: Path | None = None) -> None:
    """Serve the portal at / on `app`; the API's own routes keep their paths. `node_modules`:
    where the /vendor files are (default: chainabs.paths.node_modules())."""
    static = paths.portal_static()
    if node_modules is None:
        node_modules = paths.node_modules()
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def index() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html", headers=_NO_CACHE)

    @router.get("/vendor/{name}")
    def vendor(name: str) -> Response:
        if name not in VENDOR:
            return JSONResponse({"error": f"no portal asset named {name[:80]!r}"}, status_code=404)
        package, file = VENDOR[name]
        path = node_modules / package / file if node_modules is not None else None
        if path is None or not path.is_file():
            return JSONResponse({"error": _missing(package, node_modules)}, status_code=503)
        media = "text/javascript" if name.endswith(("js", ".mjs")) else None
        return FileResponse(path, media_type=media, headers=_NO_CACHE)

    app.include_router(router)
    app.mount("/portal", StaticFiles(directory=static), name="portal")
