"""The one exception tree of `functions/`: each error is a status and one sentence.

Handlers raise these; `functions.app` turns them (and validation, database and
unexpected errors) into `{"error": "<sentence>"}` with the right status.
"""

from __future__ import annotations


class ApiError(Exception):
    """`commit=True`: keep the request's writes although the answer is an error."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, commit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.commit = commit
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, message: str, *, retry_after_s: int = 60, commit: bool = False) -> None:
        super().__init__(message, commit=commit)
        self.retry_after_s = retry_after_s


class Unavailable(ApiError):
    status = 503
