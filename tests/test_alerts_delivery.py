"""Delivery against real receivers: HTTP (webhooks, Twilio-shaped SMS, a push
service that decrypts), SMTP (aiosmtpd); back-off, drops, dead letters."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta
from email import message_from_bytes
from urllib.parse import parse_qs

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.utils import timezone, translation
from standardwebhooks import Webhook

from queueapp.alerts import delivery, jobs, sms
from queueapp.alerts.contacts import do_subscribe
from queueapp.alerts.models import (
    AlertRule,
    Contact,
    DeliveryAttempt,
    MessageKind,
    OutboxMessage,
    WebhookEndpoint,
    reset_note,
    say_reason,
)
from queueapp.alerts.push import generate_keys
from queueapp.models import Queue, Ticket
from queueapp.services import do_call_next, do_complete, do_join
from tests.alerts_support import Receiver, SmtpServer, deliver_until, take_ticket
from tests.conftest import make_user


@pytest.fixture
def fast_retries(settings):
    settings.ALERTS_RETRY_BASE_SECONDS = 0.2
    settings.ALERTS_RETRY_MAX_SECONDS = 5
    settings.ALERTS_SEND_TIMEOUT = 2


def state_of(message_id):
    return OutboxMessage.objects.get(message_id=message_id).state


@pytest.mark.django_db(transaction=True)
def test_webhook_retried_with_backoff_until_200_with_one_id_and_valid_signatures(
        location, queue, counter, fast_retries):
    with Receiver(statuses=[500, 500, 500]) as receiver:
        endpoint = WebhookEndpoint.objects.create(location=location, url=receiver.url, event_types=["joined"])
        ticket = take_ticket(queue)
        message = OutboxMessage.objects.get()
        deliver_until(lambda: state_of(message.message_id) == "delivered")
    assert len(receiver.requests) == 4
    hook = Webhook(endpoint.secret)
    for request in receiver.requests:  # every attempt verifies with the Standard Webhooks library
        body = hook.verify(request["body"], request["headers"])
        assert body["data"]["ticket"] == ticket.display_number and body["type"] == "queue.joined"
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {message.message_id}
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests, receiver.requests[1:])]
    # base 0.2 s doubling, half fixed and half jitter: [0.1, 0.2], [0.2, 0.4], [0.4, 0.8] s, each
    # plus the worker's poll and the send (a loaded machine added 36 ms, and the windows touch:
    # the gaps need not grow strictly, their floors do)
    for gap, floor in zip(gaps, (0.1, 0.2, 0.4)):
        assert floor - 0.01 <= gap <= 2 * floor + 0.5, gaps
    attempts = list(DeliveryAttempt.objects.filter(message__message_id=message.message_id).order_by("at"))
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 500)] * 3 + [(True, 200)]
    assert OutboxMessage.objects.get().attempts == 4
    assert WebhookEndpoint.objects.get().failing_since is None


@pytest.mark.django_db(transaction=True)
def test_a_message_no_longer_true_is_dropped_with_a_reason(queue, counter):
    tickets = [take_ticket(queue) for _ in range(5)]
    do_subscribe(tickets[4], channel="sms", address="+33612345678")
    do_call_next(counter=counter)  # tickets[4]: 3 ahead, message due...
    for _ in range(4):  # ...but it is served before the worker gets to it
        t = Ticket.objects.filter(queue=queue, status="called").first() or do_call_next(counter=counter)
        do_complete(t)
    do_call_next(counter=counter)
    delivery.deliver_due()
    ahead = OutboxMessage.objects.get(kind=MessageKind.AHEAD)
    assert ahead.state == "dropped" and ahead.drop_reason == "ticket_status:called"
    # Stored as a code; said in the reader's language (the admin's).
    assert ahead.drop_reason_text == "The ticket is called now."
    with translation.override("de"):
        assert ahead.drop_reason_text == "Die Nummer ist jetzt aufgerufen."
    with translation.override("ar"):
        assert ahead.drop_reason_text == "حالة التذكرة الآن: تم استدعاؤه."
    assert not ahead.attempt_log.exists()


@pytest.mark.django_db(transaction=True)
def test_dead_after_the_attempt_limit(location, queue, settings, fast_retries):
    settings.ALERTS_MAX_ATTEMPTS = 2
    with Receiver(default=503) as receiver:
        WebhookEndpoint.objects.create(location=location, url=receiver.url)
        do_join(queue)
        deliver_until(lambda: OutboxMessage.objects.get().state == "dead")
    message = OutboxMessage.objects.get()
    assert message.attempts == 2 and message.last_error == "HTTP 503" and len(receiver.requests) == 2
    assert WebhookEndpoint.objects.get().failing_since is not None


@pytest.mark.django_db(transaction=True)
def test_a_reset_dead_message_keeps_its_history_and_gets_a_fresh_set_of_tries(
        location, queue, manager, settings, fast_retries):
    from queueapp.alerts.delivery import do_reset_dead

    settings.ALERTS_MAX_ATTEMPTS, settings.ALERTS_MAX_AGE_HOURS = 3, 24
    with Receiver(statuses=[503, 503], default=200) as receiver:
        WebhookEndpoint.objects.create(location=location, url=receiver.url)
        do_join(queue)
        born = timezone.now() - timedelta(hours=30)  # due for longer than the age limit
        OutboxMessage.objects.update(created_at=born)
        deliver_until(lambda: OutboxMessage.objects.get().state == "dead")
        assert OutboxMessage.objects.get().attempts == 1  # too old: dead at its first failure
        message = OutboxMessage.objects.get()
        assert do_reset_dead([message.pk], acting_user=manager) == 1
        assert do_reset_dead([message.pk], acting_user=manager) == 0  # no longer dead: untouched
        deliver_until(lambda: OutboxMessage.objects.get().state != "retrying")
    message = OutboxMessage.objects.get()
    # The age limit counts from the reset: retried (503, then 200) rather than dead again.
    assert (message.state, message.attempts, message.created_at) == ("delivered", 2, born)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    assert [(a.ok, a.status_code, say_reason(a.note)) for a in message.attempt_log.order_by("at", "pk")] == [
        (False, 503, ""),
        (None, None, f"Reset by {manager.get_username()} after 1 attempt (last error: HTTP 503)"),
        (False, 503, ""),
        (True, 200, ""),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_times_out_is_retried_under_the_same_id(
        location, queue, counter, settings, fast_retries):
    settings.ALERTS_SEND_TIMEOUT = 0.5
    with Receiver(hang=3) as receiver:
        WebhookEndpoint.objects.create(location=location, url=receiver.url, event_types=["called"])
        take_ticket(queue)
        do_call_next(counter=counter)  # the click writes the row; nothing is sent in it (speed: bench/)
        assert len(receiver.requests) == 0
        deliver_until(lambda: OutboxMessage.objects.get().state == "retrying")
        receiver.hang = 0
        deliver_until(lambda: OutboxMessage.objects.get().state == "delivered")
    first, last = OutboxMessage.objects.get().attempt_log.order_by("at")
    assert (first.ok, first.status_code) == (False, None) and "Timeout" in first.error, first.error
    assert first.duration_ms >= 450 and (last.ok, last.status_code) == (True, 200)
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {OutboxMessage.objects.get().message_id}


class ExplodingSms:
    """An SMS back-end whose provider library puts the number in its error."""

    def send(self, to, text, *, idempotency_key=""):
        raise ValueError(f"cannot deliver to {to}")


@pytest.mark.django_db(transaction=True)
def test_a_failing_sender_never_records_or_logs_the_address_in_full(queue, counter, settings, caplog):
    settings.ALERTS_SMS_BACKEND = f"{__name__}.ExplodingSms"
    sms.reset()
    try:
        ticket = take_ticket(queue)
        do_subscribe(ticket, channel="sms", address="+33612345678")
        do_call_next(counter=counter)
        with caplog.at_level("DEBUG"):
            delivery.deliver_due()
    finally:
        sms.reset()
    message = OutboxMessage.objects.get()
    assert message.state == "retrying" and message.last_error == "ValueError: cannot deliver to …678"
    assert message.attempt_log.get().error == message.last_error
    assert "612345678" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_emails_reach_a_real_smtp_server_with_a_stop_link_that_works(queue, counter, settings, client):
    with SmtpServer() as smtp:
        settings.MAILERS = smtp.mailers()
        ticket = take_ticket(queue)
        contact = do_subscribe(ticket, channel="email", address="pat@example.org")
        do_call_next(counter=counter)
        deliver_until(lambda: OutboxMessage.objects.filter(state="delivered").count() == 1)
        assert len(smtp.inbox.envelopes) == 1
        envelope = smtp.inbox.envelopes[0]
        assert envelope.rcpt_tos == ["pat@example.org"]
        mail = message_from_bytes(envelope.content)
        message = OutboxMessage.objects.get()
        assert mail["Message-ID"] == f"<{message.message_id}@queueapp>"
        assert mail["Subject"] == f"It's your turn ({ticket.display_number})"
        stop = f"/alerts/stop/{contact.stop_token}/"
        assert stop in mail.get_payload(decode=True).decode() and stop in mail["List-Unsubscribe"]
        from queueapp.services import do_recall

        do_recall(ticket)  # due now, but the person stops alerts before it goes out
        assert client.get(stop).status_code == 200  # a link scanner's GET changes nothing
        assert Contact.objects.get().stopped_at is None
        assert client.post(stop).status_code == 200
        contact = Contact.objects.get()
        assert contact.stopped_at is not None and contact.address == ""
        delivery.deliver_due()
        assert OutboxMessage.objects.filter(state="dropped").get().drop_reason == "alerts_stopped"
        assert len(smtp.inbox.envelopes) == 1


@pytest.mark.django_db(transaction=True)
def test_twilio_backend_posts_the_message_and_a_refused_number_is_dead_at_once(queue, counter, settings):
    with Receiver(statuses=[201, 400]) as twilio:
        settings.ALERTS_SMS_BACKEND = "queueapp.alerts.sms.TwilioSmsBackend"
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC123", "tok"
        settings.TWILIO_FROM, settings.TWILIO_API_URL = "+15005550006", f"http://127.0.0.1:{twilio.port}"
        sms.reset()
        try:
            first, second = take_ticket(queue), take_ticket(queue)
            do_subscribe(first, channel="sms", address="+33612345678")
            do_subscribe(second, channel="sms", address="+33612345679")
            do_call_next(counter=counter)
            deliver_until(lambda: OutboxMessage.objects.get(ticket=first).state == "delivered")
            do_complete(first)
            do_call_next(counter=counter)
            deliver_until(lambda: OutboxMessage.objects.get(ticket=second, kind="called").state == "dead")
        finally:
            sms.reset()
    request = twilio.requests[0]
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["headers"]["authorization"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    form = parse_qs(request["body"].decode())
    assert form["To"] == ["+33612345678"] and form["From"] == ["+15005550006"]
    assert "go to Counter 1" in form["Body"][0] and "/alerts/stop/" in form["Body"][0]


def browser_subscription(endpoint: str):
    """What a browser makes when it subscribes: a P-256 key pair and a 16-byte secret."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    auth = b"0123456789abcdef"
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return private, auth, {"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(auth)}}


@pytest.mark.django_db(transaction=True)
def test_web_push_is_decrypted_by_the_subscription_keys_and_410_removes_it(queue, counter, settings):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = generate_keys()
    with Receiver(statuses=[201, 410]) as push_service:
        # pywebpush refuses nothing on http: a local stand-in for the browser vendor's push service.
        private, auth, sub = browser_subscription(push_service.url)
        ticket = take_ticket(queue)
        contact = do_subscribe(ticket, channel="push", address=sub["endpoint"], keys=sub["keys"])
        do_call_next(counter=counter)
        deliver_until(lambda: OutboxMessage.objects.get().state == "delivered")
        request = push_service.requests[0]
        assert request["headers"]["content-encoding"] == "aes128gcm"
        assert request["headers"]["authorization"].startswith("vapid t=")
        plain = http_ece.decrypt(request["body"], private_key=private, auth_secret=auth, version="aes128gcm")
        pushed = json.loads(plain)
        assert pushed["body"].endswith(f"go to {counter.name}.") and pushed["url"].endswith(f"/t/{ticket.token}/")
        # Like every message, it says how to stop them: the notification's "Stop alerts" action.
        assert pushed["stop"] == f"{settings.ALERTS_BASE_URL}/alerts/stop/{contact.stop_token}/"
        assert pushed["stop_title"] == "Stop alerts" and "stop" in pushed["stop_hint"]
        from queueapp.services import do_recall

        do_recall(ticket)
        deliver_until(lambda: OutboxMessage.objects.filter(state="dropped").exists())
    assert not Contact.objects.exists()  # the push service said the subscription is gone
    assert OutboxMessage.objects.get(state="dropped").drop_reason == "push_gone"


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_failing_for_days_is_switched_off_and_its_managers_told(location, queue, manager, settings):
    manager.email = "boss@example.org"
    manager.save()
    endpoint = WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook",
                                              failing_since=timezone.now() - timedelta(hours=73))
    assert jobs.switch_off_failing_endpoints() == 1
    assert jobs.switch_off_failing_endpoints() == 0
    endpoint.refresh_from_db()
    since = f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
    assert not endpoint.is_active and endpoint.disabled_reason == f"failing_since:{since}"
    assert endpoint.disabled_reason_text == f"Failing since {since}."
    with translation.override("es"):
        assert endpoint.disabled_reason_text == f"Falla desde {since}."
    told = OutboxMessage.objects.get(kind=MessageKind.ENDPOINT_OFF)
    assert told.user == manager and endpoint.url in told.body
    do_join(queue)  # no webhook row for a switched-off endpoint
    assert not OutboxMessage.objects.filter(channel="webhook").exists()


@pytest.mark.django_db(transaction=True)
def test_staff_hear_once_per_crossing_of_the_queues_service_target(location, queue, manager, counter):
    manager.email = "boss@example.org"
    manager.save()
    make_user("dora", location, "manager", email="dora@example.org")
    queue.target_wait_minutes = 10  # the one fact: no rule needed, the alert is on with a target
    queue.save()
    ticket = take_ticket(queue)
    now = timezone.now()
    assert jobs.staff_wait_alerts(now=now) == 0
    later = now + timedelta(minutes=11)
    assert jobs.staff_wait_alerts(now=later) == 1
    assert jobs.staff_wait_alerts(now=later + timedelta(minutes=1)) == 0
    assert sorted(m.user.email for m in OutboxMessage.objects.filter(kind="staff_wait")) == [
        "boss@example.org", "dora@example.org"]
    do_call_next(counter=counter)  # the line is empty: the rule re-arms
    assert jobs.staff_wait_alerts(now=later) == 0
    do_complete(ticket)
    do_join(queue)
    assert jobs.staff_wait_alerts(now=timezone.now() + timedelta(minutes=12)) == 1
    assert OutboxMessage.objects.filter(kind="staff_wait").count() == 4
    assert "(service target 10 min)" in OutboxMessage.objects.filter(kind="staff_wait").first().body


@pytest.mark.django_db(transaction=True)
def test_the_staff_alert_fires_when_the_console_flags_the_ticket_and_not_before(location, queue, manager, counter):
    """One rule (`targets.past_target`) for the alert and the console's flag."""
    from queueapp.live.reads import console_context

    manager.email = "boss@example.org"
    manager.save()
    queue.target_wait_minutes = 20
    queue.save()
    ticket = take_ticket(queue)
    just_before = ticket.queued_at + timedelta(minutes=20) - timedelta(seconds=1)
    assert jobs.staff_wait_alerts(now=just_before) == 0
    Ticket.objects.filter(pk=ticket.pk).update(queued_at=ticket.queued_at - timedelta(minutes=20))
    [row] = console_context(counter.pk)["lines"][0]["tickets"]
    assert row.past_target
    assert jobs.staff_wait_alerts() == 1


@pytest.mark.django_db(transaction=True)
def test_a_switched_off_staff_wait_rule_silences_the_target_alert(location, queue, manager, counter):
    manager.email = "boss@example.org"
    manager.save()
    queue.target_wait_minutes = 5
    queue.save()
    AlertRule.objects.create(queue=queue, kind=MessageKind.STAFF_WAIT, enabled=False)
    take_ticket(queue)
    assert jobs.staff_wait_alerts(now=timezone.now() + timedelta(minutes=6)) == 0
    assert not OutboxMessage.objects.exists()
    other = Queue.objects.create(location=location, name="No target", slug="none", prefix="N")
    take_ticket(other)
    assert jobs.staff_wait_alerts(now=timezone.now() + timedelta(hours=6)) == 0  # no target, no alert


@pytest.mark.django_db
def test_a_staff_wait_rule_has_no_threshold_of_its_own(queue):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    rule = AlertRule(queue=queue, kind=MessageKind.STAFF_WAIT, threshold=10)
    with pytest.raises(ValidationError, match="service target"):
        rule.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        rule.save()


@pytest.mark.django_db(transaction=True)
def test_managers_who_asked_get_staff_alerts_by_web_push_once_per_crossing(
        location, queue, counter, manager, settings, fast_retries):
    from queueapp.alerts.models import StaffPushSubscription

    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = generate_keys()
    queue.target_wait_minutes = 10
    queue.save()
    with Receiver(statuses=[201, 410]) as push_service:
        private, auth, sub = browser_subscription(push_service.url)
        browser = StaffPushSubscription.objects.create(user=manager, address=sub["endpoint"], keys=sub["keys"])
        take_ticket(queue)  # the manager has no e-mail address: push only
        later = timezone.now() + timedelta(minutes=11)
        assert jobs.staff_wait_alerts(now=later) == 1
        assert jobs.staff_wait_alerts(now=later + timedelta(minutes=5)) == 0  # the same crossing
        message = OutboxMessage.objects.get()
        assert (message.channel, message.staff_push, message.user) == ("push", browser, manager)
        deliver_until(lambda: OutboxMessage.objects.get().state == "delivered")
        pushed = json.loads(http_ece.decrypt(push_service.requests[0]["body"], private_key=private,
                                             auth_secret=auth, version="aes128gcm"))
        assert pushed["title"] == "General: longest wait over 10 min" and "longest wait in General" in pushed["body"]
        assert pushed["url"] == f"{settings.ALERTS_BASE_URL}/console/"
        assert pushed["stop"] == f"{settings.ALERTS_BASE_URL}/alerts/stop/{browser.stop_token}/"
        # The next crossing: the push service says the subscription is gone; it is removed.
        do_call_next(counter=counter)  # the line is empty: the rule re-arms
        assert jobs.staff_wait_alerts(now=later) == 0
        do_join(queue)
        assert jobs.staff_wait_alerts(now=timezone.now() + timedelta(minutes=12)) == 1
        deliver_until(lambda: OutboxMessage.objects.filter(state="dropped").exists())
    assert not StaffPushSubscription.objects.exists()
    assert OutboxMessage.objects.get(state="dropped").drop_reason == "push_gone"


@pytest.mark.django_db(transaction=True)
def test_addresses_are_erased_after_the_retention_period(queue, counter, settings):
    settings.ALERTS_CONTACT_RETENTION_HOURS = 24
    ticket = take_ticket(queue)
    waiting = take_ticket(queue)
    do_subscribe(ticket, channel="email", address="pat@example.org")
    do_subscribe(waiting, channel="sms", address="+33612345678")
    do_call_next(counter=counter)
    do_complete(ticket)
    assert jobs.erase_alert_contacts(now=timezone.now() + timedelta(hours=23)) == 0
    assert jobs.erase_alert_contacts(now=timezone.now() + timedelta(hours=25)) == 1
    erased = Contact.objects.get(ticket=ticket)
    assert erased.address == "" and erased.blanked_at is not None
    assert Contact.objects.get(ticket=waiting).address == "+33612345678"


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_row(location, queue):
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook")
    for _ in range(60):
        do_join(queue)
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(i):
        from django.db import connection

        barrier.wait()
        try:
            while batch := delivery.claim(7):
                claimed[i] += [m.pk for m in batch]
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed[0] + claimed[1]) == sorted(OutboxMessage.objects.values_list("pk", flat=True))
    assert not set(claimed[0]) & set(claimed[1])


def test_a_claim_outlasts_a_batch_that_times_out_wave_after_wave(settings):
    settings.ALERTS_CLAIM_SECONDS, settings.ALERTS_CONCURRENCY, settings.ALERTS_SEND_TIMEOUT = 10, 16, 5
    assert delivery.lease_seconds(10) == 10  # one wave: the setting is the floor
    assert delivery.lease_seconds(100) == 7 * 6  # 7 waves of 16, each up to its timeout
    settings.ALERTS_SEND_TIMEOUT = 20
    assert delivery.lease_seconds(100) == 7 * 21


@pytest.mark.django_db
def test_reasons_stored_as_english_sentences_become_codes(location, queue):
    """The migration that made reasons codes turns the sentences already stored
    into their codes, so old rows are said in the reader's language too."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("queueapp.alerts.migrations.0006_reasons_as_codes")
    ticket = take_ticket(queue)
    old = [OutboxMessage.objects.create(channel="sms", kind=MessageKind.AHEAD, ticket=ticket, queue=queue,
                                        message_id=f"m{n}", state="dropped", drop_reason=reason)
           for n, reason in enumerate(["the ticket is being served now", "the recipient stopped alerts",
                                       "something else"])]
    endpoint = WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook", is_active=False,
                                              disabled_reason="failing since 2026-11-30 08:00 UTC")
    migration.to_codes(apps, None)
    assert [OutboxMessage.objects.get(pk=m.pk).drop_reason for m in old] == [
        "ticket_status:serving", "alerts_stopped", "something else"]
    endpoint.refresh_from_db()
    assert endpoint.disabled_reason == "failing_since:2026-11-30 08:00 UTC"
    with translation.override("de"):
        assert endpoint.disabled_reason_text == "Fehlerhaft seit 2026-11-30 08:00 UTC."


def test_a_reset_note_is_stored_as_a_code_and_said_in_the_readers_language():
    from django.utils import translation

    by_command = reset_note("", 3, "HTTP 500\tand: a colon")
    assert "Reset" not in by_command  # no English stored: the admin says it in its reader's language
    with translation.override("de"):
        assert say_reason(by_command) == ("Zurückgesetzt von einem Befehl nach 3 Versuchen "
                                          "(letzter Fehler: HTTP 500\tand: a colon)")
        assert say_reason(reset_note("bob", 1, "")) == "Zurückgesetzt von bob nach 1 Versuch"
    with translation.override("ar"):
        assert say_reason(reset_note("bob", 1, "")) == "أعاد bob التعيين بعد 1 محاولة"
        assert say_reason(reset_note("bob", 2, "")) == "أعاد bob التعيين بعد 2 محاولتين"
    assert say_reason(reset_note("bob", 1, "")) == "Reset by bob after 1 attempt"  # the count picks the form
    assert say_reason(reset_note("bob", 4, "")) == "Reset by bob after 4 attempts"
    assert say_reason("reset:x:bob") == "reset:x:bob"  # not a count: shown as stored
    assert say_reason("Reset by bob after 2 attempt(s)") == "Reset by bob after 2 attempt(s)"  # a note from before
    assert say_reason("Reset by bob after 2 attempt(s) (last error: x)") == (
        "Reset by bob after 2 attempt(s) (last error: x)")


@pytest.mark.django_db
def test_reset_notes_stored_tab_separated_become_reason_codes(location, queue):
    """The migration that made reset notes reason codes rewrites the notes
    already stored in the old tab-separated shape; other notes stay as they are."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("queueapp.alerts.migrations.0007_notes_as_reason_codes")
    message = OutboxMessage.objects.create(channel="sms", kind=MessageKind.AHEAD, queue=queue, state="dead")
    with translation.override("de"):  # the admin's label of the message, in its reader's language
        assert str(message) == f"{message.message_id} (SMS, N vor Ihnen, Tot (aufgegeben))"
    old = ["reset\tbob\t2\tHTTP 503", "reset\t\t1\t", "Reset by carol after 4 attempt(s)", ""]
    attempts = [DeliveryAttempt.objects.create(message=message, ok=None, note=note) for note in old]
    migration.to_codes(apps, None)
    notes = [DeliveryAttempt.objects.get(pk=a.pk).note for a in attempts]
    assert notes == ["reset_error:2:bob:HTTP 503", "reset:1:", "Reset by carol after 4 attempt(s)", ""]
    with translation.override("es"):
        assert [say_reason(n) for n in notes[:2]] == [
            "Reiniciado por bob tras 2 intentos (último error: HTTP 503)",
            "Reiniciado por un comando tras 1 intento"]
