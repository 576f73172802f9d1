"""Outbox figures for /metrics, read from the database at scrape time."""

from prometheus_client.core import GaugeMetricFamily

from .models import Channel, OutboxState
from .selectors import state_counts


class OutboxCollector:
    def collect(self):
        counts = state_counts()
        gauge = GaugeMetricFamily("queueapp_alert_messages",
                                  "Alert and webhook messages in the outbox, by state and channel.",
                                  labels=["state", "channel"])
        for state in OutboxState.values:
            for channel in Channel.values:
                gauge.add_metric([state, channel], counts.get((state, channel), 0))
        yield gauge
