from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django.db.backends.signals import connection_created
from django.utils.module_loading import autodiscover_modules


class QueueappConfig(AppConfig):
    name = "queueapp"
    verbose_name = _("Queues")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
        from . import converters  # noqa: F401  (registers <token:...> for the URL maps)
        from . import events
        from .dbfunctions import register_sqlite_functions
        from .live import publisher

        connection_created.connect(register_sqlite_functions, dispatch_uid="queueapp_sqlite_functions")
        # Committed events go to the live publisher: services push through
        # `events.send_event_on_commit` and never import the live package.
        events.connect(publisher.publish)
        # Each app's `jobs` module registers its periodic jobs with
        # `worker.periodic` (as pretix's periodic_task signal); the worker
        # runs whatever registered and never imports its jobs back.
        autodiscover_modules("jobs")
