"""One error body for every failure: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import AccessGovError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this body."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed or invalid request; nothing was changed."},
    401: {"model": ErrorBody, "description": "Missing, expired or invalid bearer token."},
    403: {"model": ErrorBody, "description": "The token lacks the scope this API needs."},
}


def _body(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return JSONResponse({"error": {"code": code, "message": message, "details": details}}, status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the one body."""

    @app.exception_handler(AccessGovError)
    async def _domain(_: Request, exc: AccessGovError) -> JSONResponse:
        return _body(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                   for e in exc.errors()]
        malformed = any(d["type"] == "json_invalid" for d in details)
        code = "malformed_json" if malformed else "invalid_request"
        message = "the body is not valid JSON" if malformed else "the request does not match the schema"
        return _body(400, code, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": not UTF-8, or nested too deep
            return _body(400, "malformed_json", "the body could not be parsed as JSON (not UTF-8, or too deep)")
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return _body(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return _body(500, "internal_error", "internal error")
