"""The live quote board: static files served at /board by the gateway (no build step).

`index.html`, `board.js` and `board.css` are the page; `argus.js` is the reusable browser client
(README.md beside this file documents it). The page's WebSocket goes through the same checks as
any client: `security.allowed_origins` and the token.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

HERE = Path(__file__).parent
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".md": "text/markdown",
}


def add_board_routes(app: web.Application) -> None:
    """GET /board (the page) and /board/<file> for the files listed at start; nothing else."""
    files = {p.name: p for p in HERE.iterdir() if p.suffix in TYPES}

    async def page(request: web.Request) -> web.StreamResponse:
        return _file(files["index.html"])

    async def asset(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text="no such board file\n")
        return _file(path)

    app.router.add_get("/board", page)
    app.router.add_get("/board/", page)
    app.router.add_get("/board/{name}", asset)


def _file(path: Path) -> web.FileResponse:
    # no-cache: a restarted gateway with a newer board is picked up on reload
    return web.FileResponse(
        path,
        headers={"Content-Type": f"{TYPES[path.suffix]}; charset=utf-8", "Cache-Control": "no-cache"},
    )
