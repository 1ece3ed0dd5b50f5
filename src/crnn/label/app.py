"""The labelling page's HTTP side: a FastAPI app around a :class:`~crnn.label.session.LabelSession`.

Endpoints (JSON in and out; every answer that changes something returns the new state):

- ``GET /``: the page (:mod:`crnn.label.page`); ``GET /api/state``: progress, the current image, the model;
- ``GET /api/image/{id}``: the original bytes of image ``id`` (an index, never a path from the client);
- ``POST /api/label`` ``{"id", "label", "confirm"?}``, ``POST /api/skip`` ``{"id"}``, ``POST /api/undo``,
  ``POST /api/retrain``.

Refusals are ``{"detail", "code"}`` with a 4xx status, as in ``crnn serve`` (its
:class:`~crnn.serve.app.ApiError` and body-size middleware are reused). Changing requests must be
``application/json``, which a browser will not send cross-site without a CORS preflight that this
app never grants, and the ``Host`` header must name this machine, so another web page open in the
same browser cannot label for the user.
"""

from __future__ import annotations

import json
import mimetypes

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from crnn.errors import CrnnError
from crnn.label.page import PAGE_HTML
from crnn.label.session import LabelRefused, LabelSession
from crnn.serve.app import ApiError, BodyLimitMiddleware

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_BODY_BYTES = 64 * 1024


async def _json_body(request: Request) -> dict:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "unsupported_media_type", f"send application/json, not {media or '(none)'!r}")
    try:
        data = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "bad_json", f"the body is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ApiError(422, "bad_json", "expected a JSON object")
    return data


def _item(session: LabelSession, data: dict) -> str:
    i = data.get("id")
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(session.store.items):
        raise ApiError(422, "bad_id", f"'id' must be an image number from 0 to {len(session.store.items) - 1}")
    return session.store.items[i]


def create_app(session: LabelSession, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The labelling app for ``session``; ``allowed_hosts``: ``Host`` header values accepted (default:
    this machine's names only; ``["*"]`` for any, when listening on another address)."""
    app = FastAPI(title="crnn-ocr labelling", docs_url=None, redoc_url=None)
    app.state.session = session
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES, timeout_s=30.0)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or LOCAL_HOSTS))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(LabelRefused)
    async def _refused(request: Request, exc: LabelRefused):
        return ApiError(422, exc.code, str(exc)).response()

    @app.exception_handler(CrnnError)
    async def _crnn_error(request: Request, exc: CrnnError):
        return ApiError(422, "bad_input", str(exc)).response()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE_HTML

    @app.get("/api/state")
    async def state() -> JSONResponse:
        return JSONResponse(await run_in_threadpool(session.state))

    @app.get("/api/image/{index}")
    async def image(index: int) -> Response:
        if not 0 <= index < len(session.store.items):
            raise ApiError(404, "no_image", f"no image {index}")
        path = session.store.original(session.store.items[index])
        data = await run_in_threadpool(path.read_bytes)
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(data, media_type=media, headers={"Cache-Control": "no-store"})

    @app.post("/api/label")
    async def label(request: Request) -> JSONResponse:
        data = await _json_body(request)
        item = _item(session, data)
        text = data.get("label")
        if not isinstance(text, str):
            raise ApiError(422, "bad_label", "'label' must be a string")
        await run_in_threadpool(session.submit, item, text, bool(data.get("confirm", False)))
        return JSONResponse(await run_in_threadpool(session.state))

    @app.post("/api/skip")
    async def skip(request: Request) -> JSONResponse:
        item = _item(session, await _json_body(request))
        await run_in_threadpool(session.skip, item)
        return JSONResponse(await run_in_threadpool(session.state))

    @app.post("/api/undo")
    async def undo(request: Request) -> JSONResponse:
        await _json_body(request)
        done = await run_in_threadpool(session.undo)
        st = await run_in_threadpool(session.state)
        st["message"] = "undone" if done is not None else "nothing to undo"
        return JSONResponse(st)

    @app.post("/api/retrain")
    async def retrain(request: Request) -> JSONResponse:
        await _json_body(request)
        message = await run_in_threadpool(session.retrain)
        st = await run_in_threadpool(session.state)
        st["message"] = message
        return JSONResponse(st)

    return app


__all__ = ["create_app", "LOCAL_HOSTS"]
