import os

import django

from otto.handlers import OttoWSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otto.settings")

# get_wsgi_application(), with the webhooks' lean middleware chain (otto/handlers.py).
django.setup(set_prefix=False)
application = OttoWSGIHandler()
