"""Tenant isolation, for every API route: discovered, not listed.

Every route under /api/v1/ is found by walking the URL resolver. With Globex's manager (the
outsider) against Acme's objects:
- a detail route answers 404 for every method it serves, and Acme's object is unchanged;
- any other route neither changes nor shows Acme's data.
A route whose model has no factory in tests/api/factories.py fails here, loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver

from tests.api.factories import FACTORIES

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    pattern: str  # e.g. "api/v1/contacts/<pk>/"
    view: type
    methods: tuple[str, ...]
    lookup: str | None  # the URL kwarg naming an object, for detail routes

    def __str__(self) -> str:
        return f"{'/'.join(self.methods)} {self.pattern}"

    def url(self, pk: object | None = None) -> str:
        path = "/" + self.pattern
        if self.lookup is not None:
            path = path.replace(f"<{self.lookup}>", str(pk))
        return path


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _readable(pattern: str) -> str:
    # Router regexes: ^contacts/(?P<pk>[^/.]+)/$ -> contacts/<pk>/
    import re

    pattern = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", pattern)
    pattern = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", pattern)
    return pattern.replace("^", "").replace("$", "").replace("\\.", ".")


def discover_routes() -> list[Route]:
    routes = []
    for raw, entry in _walk(get_resolver().url_patterns):
        pattern = _readable(raw)
        if not pattern.startswith(API_PREFIX) or "<format>" in pattern:
            continue
        callback = entry.callback
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view is None:
            continue
        actions = getattr(callback, "actions", None)
        if actions:
            methods = tuple(m for m in METHODS if m in actions)
        else:
            methods = tuple(m for m in METHODS if hasattr(view, m))
        methods = tuple(m for m in methods if m in view.http_method_names)
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
        lookup = lookup if lookup and f"<{lookup}>" in pattern else None
        routes.append(Route(pattern, view, methods, lookup))
    return routes


ROUTES = discover_routes()
DETAIL_ROUTES = [route for route in ROUTES if route.lookup]
OTHER_ROUTES = [route for route in ROUTES if not route.lookup]


def snapshot(obj: Model) -> dict:
    obj = type(obj)._base_manager.get(pk=obj.pk)
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def model_of(route: Route) -> type[Model]:
    queryset = getattr(route.view, "queryset", None)
    if queryset is None:
        pytest.fail(f"{route}: declare `queryset` on {route.view.__name__} (TenantViewSet)")
    return queryset.model


def test_discovery_finds_the_core_routes():
    patterns = {route.pattern for route in ROUTES}

    assert {"api/v1/me/", "api/v1/company/", "api/v1/contacts/", "api/v1/contacts/<pk>/"} <= (
        patterns
    )


def test_every_api_view_is_a_tenant_view():
    from otto.viewsets import TenantAPIView, TenantViewSet

    strays = [str(r) for r in ROUTES if not issubclass(r.view, (TenantAPIView, TenantViewSet))]

    assert not strays, f"API views outside the tenant base classes: {strays}"


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
def test_the_outsider_gets_404_on_every_detail_route(route, acme, globex_manager):
    model = model_of(route)
    make = FACTORIES.get(model)
    if make is None:
        pytest.fail(f"{route}: no factory for {model.__name__}; add one to tests/api/factories.py")
    victim = make(acme)
    before = snapshot(victim)
    client = globex_manager.client()

    for method in route.methods:
        response = getattr(client, method)(route.url(victim.pk), {}, format="json")
        assert response.status_code == 404, f"{method.upper()} {route.url(victim.pk)}"
        assert response.json()["error"]["code"] == "not_found"

    assert snapshot(victim) == before


@pytest.mark.parametrize("route", OTHER_ROUTES, ids=str)
def test_the_outsider_neither_sees_nor_changes_acme_on_other_routes(route, acme, globex_manager):
    victims = [make(acme) for make in FACTORIES.values()]
    before = [snapshot(acme), *(snapshot(victim) for victim in victims)]
    client = globex_manager.client()

    for method in route.methods:
        response = getattr(client, method)(route.url(), {}, format="json")
        assert response.status_code < 500, f"{method.upper()} {route.url()}"
        body = json.dumps(response.json()) if response.content else ""
        assert acme.name not in body
        if method == "get" and isinstance(response.json(), dict):
            ids = {item.get("id") for item in response.json().get("results") or []}
            assert not ids & {victim.pk for victim in victims}

    assert [snapshot(acme), *(snapshot(victim) for victim in victims)] == before
