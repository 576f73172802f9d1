"""What the patient page says after a missed call, on the first paint and live
(the live side is checked against the first paint by tests/test_verify_action.py's
no-show case: the same words from the same function, `models.missed_call_sentence`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from queueapp.live import reads, render
from queueapp.models import Queue
from queueapp.services import do_call_next, do_join, do_no_show

pytestmark = pytest.mark.django_db


def test_a_missed_call_is_told_with_its_time_and_the_last_chance(client, location, queue, counter, monkeypatch):
    Queue.objects.filter(pk=queue.pk).update(recall_limit=2)
    called_at = datetime(2030, 3, 4, 10, 42, tzinfo=ZoneInfo("Europe/Paris"))
    monkeypatch.setattr(timezone, "now", lambda: called_at)
    ticket = do_join(queue)
    do_call_next(counter=counter)
    do_no_show(ticket)

    page = client.get(f"/t/{ticket.token}/", follow=True).content.decode()
    assert "You missed your call at 10:42; you are back in line." in page
    live = render.ticket_status(reads.ticket_view(ticket.token))
    assert "You missed your call at 10:42; you are back in line." in live

    do_call_next(counter=counter)
    do_no_show(ticket)  # the second of two allowed: the next miss ends the ticket
    page = client.get(f"/t/{ticket.token}/", follow=True).content.decode()
    assert "You missed your call at 10:42; you are back in line, last chance." in page
    assert "last chance" in render.ticket_status(reads.ticket_view(ticket.token))


def test_a_ticket_that_never_missed_a_call_is_told_nothing_of_it(client, queue):
    ticket = do_join(queue)
    assert "missed your call" not in client.get(f"/t/{ticket.token}/", follow=True).content.decode()
