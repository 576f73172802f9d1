"""Which messages an action makes due: written in its transaction, never for a rollback."""

from __future__ import annotations

import json

import pytest

from queueapp.alerts.contacts import do_subscribe
from queueapp.alerts.models import AlertRule, Contact, MessageKind, OutboxMessage, WebhookEndpoint
from queueapp.models import Queue, QueueEvent, Ticket
from queueapp.services import (
    QueueFull,
    do_call_next,
    do_complete,
    do_join,
    do_no_show,
    do_recall,
    do_transfer,
)
from tests.alerts_support import take_ticket
from tests.conftest import make_counter, make_queue

PHONE = "+33612345678"


def join(queue, n=1):
    return [take_ticket(queue) for _ in range(n)]


def subscribe(ticket, channel="sms", address=PHONE):
    return do_subscribe(ticket, channel=channel, address=address)


def messages(kind=None):
    qs = OutboxMessage.objects.order_by("pk")
    return list(qs.filter(kind=kind) if kind else qs)


def serve_head(counter):
    ticket = do_call_next(counter=counter)
    do_complete(ticket)


@pytest.mark.django_db(transaction=True)
def test_ticket_hears_three_ahead_once_when_the_line_moves_up(queue, counter):
    tickets = join(queue, 6)
    subscribe(tickets[4])  # 4 ahead of it
    do_call_next(counter=counter)  # tickets[0] leaves the line: tickets[4] now has 3 ahead
    ahead = messages(MessageKind.AHEAD)
    assert [(m.ticket_id, m.reason, m.requires_status) for m in ahead] == [(tickets[4].pk, "ahead:3", "waiting")]
    assert "3 ahead" in ahead[0].body and tickets[4].display_number in ahead[0].body
    do_complete(tickets[0])
    serve_head(counter)  # 2 ahead now: the default rule is only "3 ahead"
    assert len(messages(MessageKind.AHEAD)) == 1


@pytest.mark.django_db(transaction=True)
def test_second_threshold_and_a_disabled_rule(queue, counter):
    AlertRule.objects.create(queue=queue, kind=MessageKind.AHEAD, threshold=3)
    AlertRule.objects.create(queue=queue, kind=MessageKind.AHEAD, threshold=1, template="{number}: next!")
    AlertRule.objects.create(queue=queue, kind=MessageKind.CALLED, enabled=False)
    tickets = join(queue, 5)
    subscribe(tickets[4])
    serve_head(counter)
    serve_head(counter)
    serve_head(counter)
    assert [m.reason for m in messages(MessageKind.AHEAD)] == ["ahead:3", "ahead:1"]
    assert messages(MessageKind.AHEAD)[1].body == f"{tickets[4].display_number}: next!"
    do_call_next(counter=counter)
    do_complete(tickets[3])
    do_call_next(counter=counter)  # tickets[4] called, but the queue turned "called" off
    assert messages(MessageKind.CALLED) == []


@pytest.mark.django_db(transaction=True)
def test_called_and_recalled_each_once_with_the_counter(queue, counter):
    ticket = join(queue)[0]
    subscribe(ticket)
    subscribe(ticket, "email", "pat@example.org")
    do_call_next(counter=counter)
    do_recall(ticket)
    called = messages(MessageKind.CALLED)
    assert sorted((m.channel, m.reason) for m in called) == [
        ("email", "called:1"), ("email", "called:2"), ("sms", "called:1"), ("sms", "called:2")]
    assert all(counter.name in m.body for m in called)


@pytest.mark.django_db(transaction=True)
def test_no_show_requeue_then_closed(location, counter):
    queue = Queue.objects.get(pk=counter.queues.get().pk)
    Queue.objects.filter(pk=queue.pk).update(recall_limit=1)
    ticket = join(queue)[0]
    subscribe(ticket)
    do_call_next(counter=counter)
    do_no_show(ticket)
    do_call_next(counter=counter)
    do_no_show(ticket)
    assert [m.kind for m in messages() if m.kind != "called"] == ["missed", "closed"]


@pytest.mark.django_db(transaction=True)
def test_alerts_follow_a_transfer(location, queue, counter):
    other = make_queue(location, "Pharmacy", "P")
    ticket = join(queue)[0]
    subscribe(ticket)
    new = do_transfer(ticket, to_queue=other)
    transferred = messages(MessageKind.TRANSFERRED)
    assert len(transferred) == 1 and new.display_number in transferred[0].body
    assert Contact.objects.filter(ticket=new, channel="sms", address=PHONE).exists()


@pytest.mark.django_db(transaction=True)
def test_a_refused_action_leaves_no_message(location):
    """The join below writes its event and the webhook row, then is refused
    (waitlist full) and rolls back: no message may survive it."""
    waitlist = make_queue(location, "Train", "T", kind=Queue.Kind.CAPACITY, capacity=1, max_waiting=0)
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook")
    do_join(waitlist)  # takes the one seat: a webhook for "joined" and one for "confirmed"
    assert OutboxMessage.objects.count() == 2
    with pytest.raises(QueueFull):
        do_join(waitlist)
    assert OutboxMessage.objects.count() == 2
    assert QueueEvent.objects.filter(queue=waitlist).count() == 2


@pytest.mark.django_db(transaction=True)
def test_webhook_body_names_the_event_never_a_token_or_address(location, queue, counter):
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/a", event_types=["called"])
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/b")
    ticket = join(queue)[0]
    subscribe(ticket, "email", "pat@example.org")
    do_call_next(counter=counter)
    hooks = OutboxMessage.objects.filter(channel="webhook").order_by("pk")
    assert [(h.endpoint.url[-1], h.subject) for h in hooks] == [("b", "joined"), ("a", "called"), ("b", "called")]
    body = json.loads(hooks[1].body)
    assert body["type"] == "queue.called"
    assert body["data"] == {"event": "called", "location": "riverside", "queue": queue.slug,
                            "queue_id": queue.pk, "version": 2, "ticket": ticket.display_number,
                            "status": "called", "counter": counter.name}
    for hook in hooks:
        assert ticket.token not in hook.body and "pat@example.org" not in hook.body


@pytest.mark.django_db(transaction=True)
def test_offer_message_and_its_reminder_before_it_lapses(location, settings):
    settings.ALERTS_OFFER_REMINDER_SECONDS = 300
    waitlist = make_queue(location, "Dinner", "D", kind=Queue.Kind.CAPACITY, capacity=1, offer_seconds=900)
    first = take_ticket(waitlist)
    second = take_ticket(waitlist)
    subscribe(second)
    from queueapp.services import do_cancel

    do_cancel(first)  # frees the seat: second is offered it
    second.refresh_from_db()
    offered, reminder = messages(MessageKind.OFFERED), messages(MessageKind.OFFER_REMINDER)
    assert len(offered) == 1 and "accept by" in offered[0].body
    assert len(reminder) == 1
    assert (second.offer_expires_at - reminder[0].next_attempt_at).total_seconds() == pytest.approx(300)


@pytest.mark.django_db(transaction=True)
def test_finding_the_ticket_at_place_n_does_not_grow_with_the_line(queue, django_assert_num_queries):
    """A call next costs the same number of queries with 5 or 300 waiting
    (the ticket at place N is one index probe, not a count)."""
    counter = make_counter(queue.location, "Counter 9", [queue])

    def queries_for_call(waiting: int) -> int:
        Ticket.objects.filter(queue=queue, status="waiting").update(status="cancelled")
        tickets = join(queue, waiting)
        subscribe(tickets[4])
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            ticket = do_call_next(counter=counter)
        do_complete(ticket)
        return len(ctx.captured_queries)

    assert queries_for_call(5) == queries_for_call(300)
    assert OutboxMessage.objects.filter(kind="ahead").count() == 2


@pytest.mark.django_db(transaction=True)
def test_addresses_appear_in_no_event_and_no_broadcast(queue, counter, published, capsys, settings):
    """Personal data stays on the contact: not in events, pushes, webhooks or the console e-mail."""
    settings.MAILERS = {"default": {"BACKEND": "queueapp.alerts.mail.ConsoleEmailBackend"}}
    from queueapp.alerts.delivery import deliver_due

    ticket = join(queue)[0]
    subscribe(ticket, "email", "pat.secret@example.org")
    subscribe(ticket, "sms", PHONE)
    do_call_next(counter=counter)
    do_recall(ticket)
    deliver_due()
    assert OutboxMessage.objects.filter(state="delivered").count() == 4
    printed = capsys.readouterr().out
    assert "It's your turn" in printed and "To: p...@example.org" in printed and "SMS to …678" in printed
    for text in [printed, json.dumps(published),
                 json.dumps(list(QueueEvent.objects.values_list("data", flat=True))),
                 *OutboxMessage.objects.values_list("body", flat=True)]:
        assert "pat.secret" not in text and PHONE not in text and "612345678" not in text
