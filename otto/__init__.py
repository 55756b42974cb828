import django_stubs_ext

# Lets Django's generic classes be subscripted at runtime (`admin.ModelAdmin[Call]`,
# `models.TextField[str, str]`), as django-stubs types them. Here, not in settings.py, so it
# runs before any Otto module, settings included, defines a class.
django_stubs_ext.monkeypatch()
