from django.apps import AppConfig


class QueueappConfig(AppConfig):
    name = "queueapp"
    verbose_name = "Queues"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
