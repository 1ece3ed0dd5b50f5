"""The HTTP service: FastAPI app around a recognizer, with limits and micro-batching.

Endpoints:

- ``POST /v1/recognize``: one or many images as ``multipart/form-data`` (file
  fields ``files`` or ``file``) or JSON ``{"images": ["<base64>", ...]}`` (plain
  base64 or ``data:`` URLs) -> ``{"results": [{"text", "confidence", "name"}],
  "timing_ms": {...}, "batch": {...}}``, results in request order.
- ``POST /v1/explain``: one image -> PNG alignment figure from
  ``crnn.insight.visualize.explanation_png`` (501 where that module is missing).
- ``GET /health``: model, limits and micro-batching counters; ``GET /metrics``:
  the counters in Prometheus text format; ``GET /openapi.json``, ``GET /docs``.
- ``GET /``: a small self-contained page (no external assets) to try a model.

Every refusal is a JSON body ``{"detail": "...", "code": "...", "index": N?}``
with a 4xx status: 413 (request too big, too many images, image too large),
415 (content type), 422 (not an image, bad base64, no image) or 400 (malformed
JSON or multipart).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import io
import json
import time
import warnings
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from crnn import __version__
from crnn.data.images import load_image, preprocess_image
from crnn.errors import CrnnError, DataError
from crnn.inference.base import refuse_lexicon_with_lm
from crnn.serve.batching import MicroBatcher
from crnn.serve.page import PAGE_HTML

FILE_FIELDS = ("files", "file")


@dataclass
class ServeSettings:
    """Limits and batching of the service (``crnn serve`` options)."""

    max_request_bytes: int = 10 * 1024 * 1024
    """Largest request body accepted (413 beyond)."""
    max_images: int = 64
    """Most images in one request (413 beyond)."""
    max_pixels: int = 16_000_000
    """Most pixels in one image, checked from its header before decoding (413 beyond)."""
    max_side: int = 16_384
    """Largest width or height of one image (413 beyond)."""
    max_batch_images: int = 32
    """Most images the micro-batcher puts in one model call."""
    body_timeout_s: float = 30.0
    """A client that stops sending its body for this long gets 408 (slow clients cannot hold the server)."""
    request_timeout_s: float = 60.0
    """The whole body must arrive within this many seconds, however steadily it trickles (408 beyond):
    ``body_timeout_s`` alone is reset by every byte, so a body dripped at 1 byte/s was never cut off."""
    max_connections: int = 64
    """Open connections (and requests in flight) the server takes before answering 503: each client that
    dawdles holds one, so this bounds what slow clients can tie up. Passed to uvicorn's limit_concurrency."""
    max_wait_ms: float = 5.0
    """How long the micro-batcher waits for more requests after the first one."""
    beam: int = 0
    """CTC beam width (0: greedy)."""
    lexicon: str | None = None
    """Word list to decode into (overrides ``beam``)."""
    lm: str | None = None
    """Character language model to decode with: ``en`` or a word-list file (:mod:`crnn.decoding.charlm`)."""
    lm_weight: float | None = None
    """Its weight against the image (None: the module's default)."""
    lm_bonus: float | None = None
    """Its per-character bonus (None: the module's default)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ApiError(Exception):
    """A refused request: HTTP status, a stable machine-readable code, a one-line message."""

    def __init__(self, status: int, code: str, detail: str, index: int | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.index = status, code, detail, index

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"detail": self.detail, "code": self.code}
        if self.index is not None:
            body["index"] = self.index
        return JSONResponse(body, status_code=self.status)


# -- schemas (for the responses and the OpenAPI document) ---------------------------------------------------------
class TextResult(BaseModel):
    text: str = Field(description="the recognised text")
    confidence: float = Field(description="sequence probability in [0, 1]")
    name: str = Field(description="the uploaded file name, or images[i] for JSON input")


class BatchInfo(BaseModel):
    images: int = Field(description="images in the model call that served this request (all requests)")
    requests: int = Field(description="requests sharing that model call")


class RecognizeResponse(BaseModel):
    results: list[TextResult]
    timing_ms: dict[str, float] = Field(description="read (parse + decode + resize), queue, model, total")
    batch: BatchInfo


class ImagesJSON(BaseModel):
    images: list[str] = Field(description="base64-encoded image files (PNG, JPEG, ...), or data: URLs")


class ErrorBody(BaseModel):
    detail: str
    code: str
    index: int | None = Field(default=None, description="the offending image's position, when one is at fault")


def _request_body_schema() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
            "file": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": ImagesJSON.model_json_schema()},
    }}}


_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (400, 413, 415, 422)}


# -- request parsing ------------------------------------------------------------------------------------------------
async def read_images(request: Request, s: ServeSettings) -> list[tuple[str, bytes]]:
    """The uploaded image files as ``(name, bytes)``, in request order; raises :class:`ApiError`."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        blobs = await _read_multipart(request, s)
    elif media == "application/json" or media.endswith("+json"):
        blobs = _read_json(await request.body(), s)
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"content type {media or '(none)'!r} is not accepted: send multipart/form-data with image "
                       "files in the field 'files' (or 'file'), or application/json {\"images\": [base64, ...]}")
    if not blobs:
        raise ApiError(422, "no_images", "the request holds no image: send files in the field 'files' or 'file', "
                                         "or a non-empty JSON list 'images'")
    if len(blobs) > s.max_images:
        raise ApiError(413, "too_many_images", f"{len(blobs)} images in one request; the limit is {s.max_images}")
    return blobs


async def _read_multipart(request: Request, s: ServeSettings) -> list[tuple[str, bytes]]:
    try:
        form = await request.form(max_files=s.max_images * 2 + 8, max_fields=100,
                                  max_part_size=s.max_request_bytes)
    except StarletteHTTPException as e:
        if "too many files" in str(e.detail).lower():
            raise ApiError(413, "too_many_images", f"too many files in one request; the limit is {s.max_images}"
                           ) from None
        raise ApiError(400, "bad_multipart", f"malformed multipart body: {e.detail}") from None
    try:
        blobs: list[tuple[str, bytes]] = []
        for key, value in form.multi_items():
            if not isinstance(value, UploadFile):
                continue
            if key not in FILE_FIELDS:
                raise ApiError(422, "unexpected_field",
                               f"file field {key!r} is not read: put images in the field 'files' (or 'file')",
                               len(blobs))
            blobs.append((value.filename or f"files[{len(blobs)}]", await value.read()))
        return blobs
    finally:
        await form.close()


def _read_json(body: bytes, s: ServeSettings) -> list[tuple[str, bytes]]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "bad_json", f"the body is not valid JSON ({e})") from None
    if isinstance(data, dict) and "images" not in data and isinstance(data.get("image"), str):
        data = {"images": [data["image"]]}
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ApiError(422, "bad_json", 'expected a JSON object {"images": ["<base64>", ...]}')
    items = data["images"]
    if len(items) > s.max_images:
        raise ApiError(413, "too_many_images", f"{len(items)} images in one request; the limit is {s.max_images}")
    blobs = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ApiError(422, "bad_base64", f"images[{i}] is a {type(item).__name__}, not a base64 string", i)
        text = item.strip()
        if text.startswith("data:"):
            head, _, text = text.partition(",")
            if ";base64" not in head:
                raise ApiError(422, "bad_base64", f"images[{i}]: only base64 data: URLs are accepted", i)
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "bad_base64", f"images[{i}] is not valid base64", i) from None
        blobs.append((f"images[{i}]", raw))
    return blobs


def check_and_prepare(blobs: Sequence[tuple[str, bytes]], pre, s: ServeSettings) -> list[np.ndarray]:
    """Check each image's header against the limits, then decode and resize it as in training."""
    arrays = []
    for i, (name, data) in enumerate(blobs):
        label = f"image {i} ({name})"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    w, h = im.size
        except UnidentifiedImageError:
            raise ApiError(422, "not_an_image", f"{label}: not an image (no known image format)", i) from None
        except Image.DecompressionBombError as e:
            raise ApiError(413, "image_too_large", f"{label}: refused as a possible decompression bomb ({e})",
                           i) from None
        except Exception as e:  # truncated headers and the like
            raise ApiError(422, "not_an_image", f"{label}: unreadable image ({type(e).__name__}: {e})", i) from None
        if w > s.max_side or h > s.max_side:
            raise ApiError(413, "image_too_large", f"{label}: {w}x{h} pixels; the largest side accepted is "
                                                   f"{s.max_side}", i)
        if w * h > s.max_pixels:
            raise ApiError(413, "image_too_large", f"{label}: {w}x{h} = {w * h:,} pixels; the limit is "
                                                   f"{s.max_pixels:,}", i)
        try:
            arrays.append(preprocess_image(data, pre, label))
        except DataError as e:
            raise ApiError(422, "bad_image", str(e), i) from None
    return arrays


# -- the request size limit -----------------------------------------------------------------------------------------
class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, before any parsing (Content-Length or counted),
    and with 408 bodies that stall for ``timeout_s`` or are not complete ``deadline_s`` after they began."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0, deadline_s: float = 60.0):
        self.app, self.max_bytes, self.timeout_s, self.deadline_s = app, max_bytes, timeout_s, deadline_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            too_big = declared is not None and int(declared) > self.max_bytes
        except ValueError:
            too_big = False
        if too_big:
            await self._drain(receive, int(declared))
            return await self._refuse(scope, receive, send, int(declared))
        chunks, size, more = [], 0, True
        deadline = time.monotonic() + self.deadline_s
        while more:  # bodies within the limit are buffered, so chunked uploads are counted too
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), min(self.timeout_s, left))
            except asyncio.TimeoutError:
                detail = (f"the request body stalled for {self.timeout_s:g} s" if left > self.timeout_s else
                          f"the request body did not arrive within {self.deadline_s:g} s")
                return await ApiError(408, "request_timeout", detail).response()(scope, receive, send)
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                if more:
                    await self._drain(receive, None)
                return await self._refuse(scope, receive, send, None)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _drain(self, receive, declared: int | None) -> None:
        """Read (and drop) a moderately oversized body, so the client sees the 413 rather than a reset."""
        if declared is not None and declared > 8 * self.max_bytes:
            return
        budget = 8 * self.max_bytes
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))

    async def _refuse(self, scope, receive, send, size: int | None) -> None:
        what = f"{size:,} bytes" if size is not None else "more bytes than that"
        err = ApiError(413, "request_too_large", f"the request body has {what}; the limit is "
                                                 f"{self.max_bytes:,} bytes")
        await err.response()(scope, receive, send)


def explanation_png(recognizer, image) -> bytes:
    """``crnn.insight.visualize.explanation_png``, imported on first use (matplotlib is slow to import)."""
    try:
        from crnn.insight.visualize import explanation_png as draw
    except ImportError as e:
        raise ApiError(501, "not_available", f"alignment figures are not available in this installation ({e})"
                       ) from None
    return draw(recognizer, image)


# -- the app --------------------------------------------------------------------------------------------------------
def create_app(recognizer, settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``recognizer`` (:class:`crnn.Recognizer`, :class:`~crnn.export.OnnxRecognizer`, ...).

    The recognizer needs ``preprocess``, ``charset``, ``name`` and
    ``predict(images, batch_size=, beam=, lexicon=, lm=)``.
    """
    s = settings or ServeSettings()
    refuse_lexicon_with_lm(s.lexicon, s.lm)  # at start-up, not at the first request
    lexicon = None
    if s.lexicon:
        from crnn.decoding.lexicon import Lexicon

        lexicon = Lexicon.from_file(s.lexicon, recognizer.charset)
    lm = None
    if s.lm:  # built once here, not per request
        from crnn.decoding.charlm import LMScorer, load_lm

        lm = LMScorer(load_lm(s.lm), recognizer.charset, weight=s.lm_weight, bonus=s.lm_bonus)
    pre = recognizer.preprocess
    if pre.max_pixels > s.max_pixels:
        pre = dataclasses.replace(pre, max_pixels=s.max_pixels)

    def run_model(arrays: list[np.ndarray]):
        return recognizer.predict(arrays, batch_size=s.max_batch_images, beam=s.beam, lexicon=lexicon, lm=lm)

    batcher = MicroBatcher(run_model, s.max_batch_images, s.max_wait_ms)
    backend = getattr(recognizer, "backend", "torch")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()

    app = FastAPI(title="crnn-ocr", version=__version__, lifespan=lifespan,
                  description="Read the text of text-line images with a CRNN model.")
    app.state.recognizer, app.state.settings, app.state.batcher = recognizer, s, batcher
    app.add_middleware(BodyLimitMiddleware, max_bytes=s.max_request_bytes, timeout_s=s.body_timeout_s,
                       deadline_s=s.request_timeout_s)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(CrnnError)
    async def _crnn_error(request: Request, exc: CrnnError):
        return ApiError(422, "bad_input", str(exc)).response()

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):  # the server logs the traceback
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})", "code": "internal"}, 500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE_HTML, headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                       "script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"})

    @app.get("/health", summary="Liveness, model description, limits and batching counters")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model": str(recognizer.name), "backend": backend,
                "charset": recognizer.charset.chars, "preprocess": recognizer.preprocess.to_dict(),
                "limits": s.to_dict(), "batching": batcher.stats.to_dict()}

    @app.get("/metrics", response_class=PlainTextResponse, summary="Counters in Prometheus text format")
    async def metrics():
        st = batcher.stats
        lines = []
        for name, kind, value, help_ in (
                ("crnn_requests_total", "counter", st.requests, "recognition requests queued"),
                ("crnn_images_total", "counter", st.images, "images queued"),
                ("crnn_batches_total", "counter", st.batches, "model calls"),
                ("crnn_failed_batches_total", "counter", st.failed_batches, "model calls that raised"),
                ("crnn_model_seconds_total", "counter", round(st.model_seconds, 6), "time spent in model calls"),
                ("crnn_max_batch_images", "gauge", st.max_batch_images, "largest batch so far")):
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    @app.post("/v1/recognize", response_model=RecognizeResponse, responses=_ERRORS,
              openapi_extra=_request_body_schema(), summary="Read the text of one or many text-line images")
    async def recognize(request: Request):
        t0 = time.perf_counter()
        blobs = await read_images(request, s)
        arrays = await run_in_threadpool(check_and_prepare, blobs, pre, s)
        t1 = time.perf_counter()
        preds, timing = await batcher.submit(arrays)
        t2 = time.perf_counter()
        return {
            "results": [{"text": p.text, "confidence": round(float(p.confidence), 6), "name": name}
                        for p, (name, _) in zip(preds, blobs)],
            "timing_ms": {"read": round((t1 - t0) * 1000, 3), "queue": timing.queue_ms, "model": timing.model_ms,
                          "total": round((t2 - t0) * 1000, 3)},
            "batch": {"images": timing.batch_images, "requests": timing.batch_requests},
        }

    explain_responses: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}},
                                                          501: {"model": ErrorBody}, **_ERRORS}

    @app.post("/v1/explain", responses=explain_responses,
              openapi_extra=_request_body_schema(), response_class=Response,
              summary="PNG figure: the image, per-frame predictions and the text's alignment")
    async def explain(request: Request):
        if not hasattr(recognizer, "model"):
            raise ApiError(501, "not_available", f"alignment figures need the PyTorch model (gradients); this server "
                                                 f"runs the {backend} backend: serve the checkpoint to get them")
        blobs = await read_images(request, s)
        if len(blobs) != 1:
            raise ApiError(422, "one_image", f"send exactly one image to explain, not {len(blobs)}")
        await run_in_threadpool(check_and_prepare, blobs, pre, s)  # same limits and errors as /v1/recognize
        image = await run_in_threadpool(load_image, blobs[0][1], blobs[0][0], pre.max_pixels)
        loop = asyncio.get_running_loop()
        png = await loop.run_in_executor(batcher.executor, explanation_png, recognizer, image)
        return Response(png, media_type="image/png")

    return app
