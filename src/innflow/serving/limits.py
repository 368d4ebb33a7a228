"""Request bodies read within bounds, chunked or not, whatever their content type.

A body is read from the stream chunk by chunk and refused (413) the moment it crosses the
per-request limit, so a body sent without ``Content-Length`` (chunked) costs at most the
limit, never its whole size. Across concurrent requests, the bytes being held are capped
by a ``BodyBudget``: a request that would take more is answered 503 with ``Retry-After``
(the service is busy; the same body may succeed a moment later), not 413 (which says the
body itself is too large).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import ClientDisconnect, Request

from innflow.serving.parsing import RequestError

RETRY_AFTER_SECONDS = "1"


class BodyBudget:
    """The request-body bytes one service process holds at once, and their cap.

    Taken and given back on the event loop only (route coroutines), so no lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        """Reserve ``size`` more bytes; False (nothing reserved) when over the cap."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        """Release bytes reserved by ``take``."""
        self.held -= size


def too_large(max_bytes: int) -> RequestError:
    """The 413 of a body over the per-request limit."""
    return RequestError(413, f"body over {max_bytes} bytes")


@asynccontextmanager
async def bounded_body(
    request: Request, max_bytes: int, budget: BodyBudget
) -> AsyncIterator[bytes]:
    """The request's body, read while counting: 413 as soon as it crosses ``max_bytes``
    (at once when ``Content-Length`` says so), 503 when the budget across requests is
    spent. The bytes stay reserved until the block ends (the request is answered).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    held = 0
    try:
        try:
            async for chunk in request.stream():
                if not chunk:
                    continue
                if held + len(chunk) > max_bytes:
                    raise too_large(max_bytes)
                if not budget.take(len(chunk)):
                    raise RequestError(
                        503, "the service is reading too many request bodies at once; retry",
                        headers={"Retry-After": RETRY_AFTER_SECONDS},
                    )  # fmt: skip
                held += len(chunk)
                chunks.append(chunk)
        except ClientDisconnect as e:  # nobody to answer; said as a 4xx for the metrics
            raise RequestError(400, "the client disconnected before sending the whole body") from e
        yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        budget.give(held)
