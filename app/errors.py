"""Domain errors: raised by services, mapped to one HTTP error body by a single handler."""

from __future__ import annotations

from typing import Any


class AccessGovError(Exception):
    """Base of every error a caller may see; ``code`` is machine-readable, ``message`` human."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(AccessGovError):
    """The request is well-formed JSON but asks for something that cannot be done."""

    status = 400
    code = "invalid_request"


class Unauthorized(AccessGovError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(AccessGovError):
    """Valid credentials that do not carry the needed scope."""

    status = 403
    code = "forbidden"


class NotFound(AccessGovError):
    """The named thing does not exist."""

    status = 404
    code = "not_found"


class Conflict(AccessGovError):
    """The change conflicts with the current state."""

    status = 409
    code = "conflict"


class InvalidPolicy(AccessGovError):
    """A policy bundle or change fails validation or its policy tests; nothing was changed."""

    status = 422
    code = "invalid_policy"


class Unsupported(AccessGovError):
    """The request is valid but its answer cannot be expressed (e.g. a filter); refused, not dropped."""

    status = 422
    code = "unsupported"


class NotReady(AccessGovError):
    """The policy is not loaded yet; decisions are refused."""

    status = 503
    code = "not_ready"
