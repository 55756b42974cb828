"""One factory per tenant-owned model behind an API route, for the isolation suite.

``FACTORIES[Model](company)`` returns a saved instance owned by ``company``. When a new
viewset is routed under /api/v1/, tests/api/test_isolation.py fails until its model has a
factory here: register it with :func:`factory`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import factory as factory_boy
from django.db.models import Model

from otto.models import Company, Contact

FACTORIES: dict[type[Model], Callable[[Company], Model]] = {}

_numbers = itertools.count(1000)


def factory(model: type[Model]) -> Callable:
    def register(make: Callable[[Company], Model]) -> Callable[[Company], Model]:
        FACTORIES[model] = make
        return make

    return register


class ContactFactory(factory_boy.django.DjangoModelFactory):
    class Meta:
        model = Contact

    phone = factory_boy.LazyFunction(lambda: f"+1303555{next(_numbers):04d}")
    name = factory_boy.Sequence(lambda n: f"Customer {n}")
    email = factory_boy.Sequence(lambda n: f"customer{n}@example.com")
    address = "1 Main St"


@factory(Contact)
def make_contact(company: Company) -> Contact:
    return ContactFactory(company=company)
