from django.apps import AppConfig
from django.db.backends.signals import connection_created


class QueueappConfig(AppConfig):
    name = "queueapp"
    verbose_name = "Queues"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
        from . import converters  # noqa: F401  (registers <token:...> for the URL maps)
        from .dbfunctions import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="queueapp_sqlite_functions")
