"""The graceful drain: what a process told to stop does first, so that a balancer moves its
traffic elsewhere before it stops accepting, and no request is left without an answer.

On SIGTERM the process keeps serving for `DRAIN_SECONDS`, but `/ready` answers 503 at once (a
balancer's health check takes the instance out) and every response says `Connection: close`
(clients and balancers leave their keep-alive connections, instead of sending a request on one
just as it is closed). Then uvicorn's graceful shutdown runs as it would have: it stops
accepting, lets requests in flight finish within `SHUTDOWN_TIMEOUT_SECONDS`, and exits.

SIGINT (Ctrl+C: a person at a terminal, not a balancer) skips the drain, and so does a second
SIGTERM or a SIGINT during it. With several workers each worker drains: uvicorn's supervisor
forwards its SIGTERM once to every worker (a second SIGTERM to the supervisor is not forwarded:
send it to the workers), and Ctrl+C reaches every worker itself.
"""

import asyncio
import signal
import time
from dataclasses import dataclass
from types import FrameType

import structlog
from fastapi import HTTPException, Request
from uvicorn.supervisors import Multiprocess

from shared.db import app_state
from shared.problems import RETRY_AFTER_SECONDS

log = structlog.get_logger()


@dataclass
class Drain:
    """Whether this process has been told to stop and is draining (monotonic time it began)."""

    seconds: float
    began_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.began_at is not None

    def begin(self) -> None:
        if self.began_at is None:
            self.began_at = time.monotonic()


def drain_of(request: Request) -> Drain:
    """The application's drain state (set once by `create_app`)."""
    return app_state(request.app).drain


class ShuttingDown(HTTPException):
    """503 from `/ready` while draining: this instance is about to stop."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "The service is shutting down: it finishes the requests it has, and takes no more "
            "once its drain ends; send new requests to another instance.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def refuse_while_draining(request: Request) -> None:
    """A dependency for `/ready`: 503 while draining, before anything touches the database."""
    if drain_of(request).draining:
        raise ShuttingDown


def drain_before_stopping(drain: Drain) -> None:
    """Put the drain in front of the server's own SIGTERM handling, in this process.

    Called while uvicorn loads the app: uvicorn has installed its SIGTERM and SIGINT handlers
    (which start its graceful shutdown) on the main thread, in the running event loop. They
    are called as they would have been, SIGTERM's only once the drain is over. uvicorn puts
    back the handlers it found when it exits, so this one goes with it."""
    loop = asyncio.get_running_loop()
    found = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = {sig: handler for sig, handler in found.items() if callable(handler)}
    if drain.seconds == 0:
        return
    if len(stop) != len(found):
        # Not served by uvicorn's Server (which would have installed them): nothing to delay.
        log.warning("server.drain_unavailable", reason="no server signal handlers to wrap")
        return
    handed_over = False

    def hand_over(sig: int, frame: FrameType | None) -> None:
        nonlocal handed_over
        handed_over = True
        stop[signal.Signals(sig)](sig, frame)

    def end_of_drain() -> None:
        if not handed_over:
            log.info("server.drained", seconds=drain.seconds)
            hand_over(signal.SIGTERM, None)

    def start_timer() -> None:
        log.info("server.draining", seconds=drain.seconds)
        loop.call_later(drain.seconds, end_of_drain)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the loop (or a log line) anywhere: it only flips
        # flags, and leaves the rest to the loop through its one thread-safe way in.
        if sig == signal.SIGTERM and not drain.draining and not handed_over:
            drain.begin()
            loop.call_soon_threadsafe(start_timer)
            return
        if drain.draining and not handed_over:
            name = signal.Signals(sig).name
            loop.call_soon_threadsafe(lambda: log.info("server.drain_skipped", signal=name))
        # Every later signal reaches uvicorn too: a second Ctrl+C still forces the exit.
        hand_over(sig, frame)

    for sig in stop:
        signal.signal(sig, on_signal)


class Supervisor(Multiprocess):
    """uvicorn's supervisor of several workers, letting go of the listening socket once it has
    told them to stop.

    The workers stop accepting by closing their copies of the socket, but the supervisor's copy
    kept it listening: until the supervisor exited, the kernel accepted connections that nobody
    would serve and then reset them, which a balancer cannot tell from a request lost in
    processing. Closed here, the socket stops listening when the last worker closes its own,
    and new connections are refused, which a balancer retries elsewhere."""

    def terminate_all(self) -> None:
        super().terminate_all()
        for sock in self.sockets:
            sock.close()
