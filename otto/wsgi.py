import os
from collections.abc import Callable, Iterable
from typing import Any

import django

from otto.handlers import OttoWSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otto.settings")

# get_wsgi_application(), with the webhooks' lean middleware chain (otto/handlers.py).
django.setup(set_prefix=False)
application = OttoWSGIHandler()

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Under granian (otto/web.py) nothing else marks an exited worker dead.
    from otto.metrics import forget_dead_processes

    forget_dead_processes()


_CGI = frozenset(
    (
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
        "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
        "REMOTE_HOST", "REMOTE_PORT", "GATEWAY_INTERFACE", "SERVER_SOFTWARE",
    )
)  # fmt: skip


def _without_process_environment(app: OttoWSGIHandler) -> Callable[..., Iterable[bytes]]:
    """granian puts the whole process environment (DATABASE_URL, SECRET_KEY, …) in every
    WSGI environ, where it would become ``request.META``; this drops it again, so the
    request sees what gunicorn would give it. The request's own CGI variables are never
    dropped, and a header (``HTTP_*``) named like a variable is dropped only with the
    variable's value."""
    process = {key: value for key, value in os.environ.items() if key not in _CGI}

    def served(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for key, value in process.items():
            if environ.get(key) == value:
                del environ[key]
        return app(environ, start_response)

    return served


# What otto/web.py serves.
granian_application = _without_process_environment(application)
