from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "queueapp.alerts"
    label = "alerts"
    verbose_name = _("Alerts and webhooks")
    default_auto_field = "django.db.models.BigAutoField"
