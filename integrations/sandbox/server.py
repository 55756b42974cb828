"""The provider sandbox: one local HTTP server that speaks each provider's wire format.

Provider modules live in ``integrations/sandbox/providers/`` and declare their endpoints
with :func:`route`; the server discovers them at start. Every endpoint has a name
(``deepgram.listen``), which the control API uses to inject failures:

- ``POST /_sandbox/failures`` ``{"endpoint": "deepgram.listen", "mode": "429", "count": 2}``
  makes the next 2 responses of that endpoint (or of every endpoint whose name starts with
  ``deepgram.``, when given ``"deepgram"``) fail. Modes: ``429``, ``500``, ``timeout``
  (sleep ``delay_seconds``, default 30, then answer normally, so the client times out),
  ``latency`` (sleep ``delay_seconds``, default 0.5, then answer normally), ``hold`` (act
  on the request at once, e.g. accept the SMS, then hold the answer ``delay_seconds``: a
  client killed meanwhile never learns what the provider did), ``malformed`` (200 with a
  truncated JSON body), ``refusal`` (an LLM endpoint answers with the model's refusal in
  place of output, billed as usual; other endpoints answer normally).
- ``POST /_sandbox/reset`` forgets failures, recorded requests and provider state.
- ``GET /_sandbox/requests?endpoint=…`` lists the requests received, newest last.
- ``GET /_sandbox/deliveries`` lists the webhooks the sandbox sent to the app.
- ``GET /_sandbox/routes`` lists the endpoint names.

Nothing in here is production code: only settings (when ``SANDBOX`` is on), the
sandbox's own management commands and the tests import it.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

FAILURE_MODES = ("429", "500", "timeout", "latency", "hold", "malformed", "refusal")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    sandbox: Sandbox
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route
    # An injected "refusal": an LLM endpoint answers with a refusal instead of output.
    refuse: bool = False

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def base_url(self) -> str:
        return self.sandbox.url


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message}, status)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


_ROUTES: list[Route] = []


def route(method: str, pattern: str, name: str) -> Callable[[Handler], Handler]:
    """Declare ``handler`` as the sandbox endpoint ``name`` for ``method`` + ``pattern``."""

    def register(handler: Handler) -> Handler:
        _ROUTES.append(Route(method.upper(), re.compile(f"^{pattern}$"), name, handler))
        return handler

    return register


def discover_routes() -> list[Route]:
    from integrations.sandbox import providers

    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{module.name}")
    names = [r.name for r in _ROUTES]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise RuntimeError(f"sandbox endpoints declared twice: {sorted(duplicates)}")
    return list(_ROUTES)


@dataclass
class Failure:
    mode: str
    delay_seconds: float


class Sandbox:
    """The server, its provider state and its failure plan. Thread-safe."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, app_url: str = "") -> None:
        self.routes = discover_routes()
        self.app_url = app_url.rstrip("/")
        self.lock = threading.RLock()
        # Per-provider state, e.g. state["twilio"]["messages"][sid] = {...}.
        self.state: dict[str, dict[str, Any]] = defaultdict(dict)
        self.failures: dict[str, deque[Failure]] = defaultdict(deque)
        self.requests: deque[dict[str, Any]] = deque(maxlen=2000)
        self._timers: list[threading.Timer] = []
        # Outbound webhooks: every delivery is recorded; tests may replace the transport
        # (e.g. with Django's test client) by setting ``outbound``.
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=2000)
        self.outbound: Callable[[str, bytes, dict[str, str]], int] | None = None
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        # An AF_INET server's address is (host, port); only AF_UNIX ones are bytes.
        host, port = cast(tuple[str, int], self.httpd.server_address[:2])
        return f"http://{host}:{port}"

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Sandbox:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def later(self, delay: float, func: Callable[[], Any]) -> None:
        """Run ``func`` after ``delay`` seconds, e.g. a status callback after a send."""

        def run() -> None:
            try:
                func()
            except Exception:
                logger.exception("sandbox background job failed")

        timer = threading.Timer(delay, run)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def deliver(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST a signed webhook to the app, as the provider would; returns the status."""
        if self.outbound is not None:
            status = self.outbound(url, body, headers)
        else:
            import httpx

            try:
                status = httpx.post(url, content=body, headers=headers, timeout=10).status_code
            except httpx.HTTPError as exc:
                logger.warning("sandbox could not deliver to %s: %s", url, exc)
                status = 0
        with self.lock:
            self.deliveries.append(
                {
                    "url": url,
                    "headers": headers,
                    "body": body.decode(errors="replace"),
                    "status": status,
                    "at": time.time(),
                }
            )
        return status

    # --- failure plan ----------------------------------------------------------------

    def inject(
        self, endpoint: str, mode: str, count: int = 1, delay_seconds: float | None = None
    ) -> None:
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}")
        if not any(self._matches(endpoint, r.name) for r in self.routes):
            raise ValueError(f"no sandbox endpoint named {endpoint!r}")
        if delay_seconds is None:
            delay_seconds = 30.0 if mode == "timeout" else 0.5
        with self.lock:
            for _ in range(count):
                self.failures[endpoint].append(Failure(mode, delay_seconds))

    def reset(self) -> None:
        with self.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self.failures.clear()
            self.requests.clear()
            self.deliveries.clear()
            self.state.clear()

    @staticmethod
    def _matches(endpoint: str, name: str) -> bool:
        return name == endpoint or name.startswith(endpoint + ".")

    def _next_failure(self, name: str) -> Failure | None:
        with self.lock:
            for endpoint, planned in self.failures.items():
                if planned and self._matches(endpoint, name):
                    return planned.popleft()
        return None

    def recorded(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r
                for r in self.requests
                if endpoint is None or self._matches(endpoint, r["endpoint"])
            ]

    # --- dispatch --------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        for candidate in self.routes:
            match = candidate.pattern.match(request.path)
            if match and candidate.method == request.method:
                request.params = match.groupdict()
                return self._call(candidate, request)
        return Response.error(404, f"no sandbox route for {request.method} {request.path}")

    def _call(self, endpoint: Route, request: Request) -> Response:
        with self.lock:
            self.requests.append(
                {
                    "endpoint": endpoint.name,
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers,
                    "body": request.body.decode(errors="replace"),
                    "at": time.time(),
                }
            )
        failure = self._next_failure(endpoint.name)
        if failure is not None:
            if failure.mode == "429":
                return Response(
                    429,
                    json.dumps({"error": "Too many requests (sandbox)"}).encode(),
                    {"Content-Type": "application/json", "Retry-After": "1"},
                )
            if failure.mode == "500":
                return Response.error(500, "Internal server error (sandbox)")
            if failure.mode == "malformed":
                return Response(200, b'{"malformed": [1, 2', {"Content-Type": "application/json"})
            if failure.mode == "refusal":
                request.refuse = True
            elif failure.mode == "hold":
                response = endpoint.handler(request)
                time.sleep(failure.delay_seconds)
                return response
            else:
                time.sleep(failure.delay_seconds)  # timeout and latency
        return endpoint.handler(request)

    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_sandbox/").rstrip("/")
        if action == "routes" and request.method == "GET":
            return Response.json({"endpoints": sorted(r.name for r in self.routes)})
        if action == "requests" and request.method == "GET":
            return Response.json({"requests": self.recorded(request.arg("endpoint"))})
        if action == "deliveries" and request.method == "GET":
            with self.lock:
                return Response.json({"deliveries": list(self.deliveries)})
        if action == "reset" and request.method == "POST":
            self.reset()
            return Response.json({"reset": True})
        if action == "failures" and request.method == "POST":
            try:
                spec = request.json()
                self.inject(
                    spec["endpoint"],
                    str(spec["mode"]),
                    int(spec.get("count", 1)),
                    spec.get("delay_seconds"),
                )
            except (KeyError, TypeError, ValueError) as exc:
                return Response.error(400, f"bad failure spec: {exc}")
            return Response.json({"planned": spec}, 201)
        for candidate in self.routes:  # provider-specific control endpoints
            if candidate.name.startswith("_sandbox.") and candidate.method == request.method:
                match = candidate.pattern.match(request.path)
                if match:
                    request.params = match.groupdict()
                    return candidate.handler(request)
        return Response.error(404, f"no sandbox control action {request.method} {request.path}")


def _make_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class SandboxHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "OttoSandbox/1"

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self._read_body(),
                sandbox=sandbox,
            )
            try:
                response = sandbox.dispatch(request)
            except Exception as exc:
                logger.exception("sandbox handler failed for %s %s", self.command, parts.path)
                response = Response.error(500, f"sandbox handler error: {type(exc).__name__}")
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. its timeout fired first)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("sandbox: " + format, *args)

    return SandboxHandler
