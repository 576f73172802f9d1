"""Opting in on the kiosk, the online join and the ticket page; stopping; the
admin, /metrics and the statistics page; the commands."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks import Webhook

from queueapp.alerts.models import Contact, OutboxMessage, WebhookEndpoint
from queueapp.alerts.push import generate_keys
from queueapp.models import Ticket
from queueapp.services import do_call_next, do_join
from tests.alerts_support import take_ticket
from tests.test_alerts_delivery import browser_subscription

PHONE = "+33 6 12 34 56 78"


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.TICKET_RATE_LIMITS = {**settings.TICKET_RATE_LIMITS, "join": (1000, 60), "kiosk": (1000, 60)}


@pytest.mark.django_db
def test_kiosk_join_with_a_phone_number_and_consent(client, location, queue):
    page = client.get(f"/kiosk/{location.slug}/")
    assert b'name="alert_contact"' in page.content
    response = client.post(f"/kiosk/{location.slug}/", {"queue": queue.pk, "alert_contact": PHONE,
                                                       "alert_consent": "yes"})
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert (contact.channel, contact.address) == ("sms", "+33612345678")
    assert contact.ticket == Ticket.objects.get()


@pytest.mark.django_db
@pytest.mark.parametrize("value, consent, field_message", [
    ("call me", "yes", "not a phone number"),
    ("06 12", "yes", "does not exist"),
    ("+33 1", "yes", "not a phone number"),
    ("+1 555 0000 000", "yes", "does not exist"),
    ("pat@", "yes", "not an e-mail address"),
    ("pat@example.org", "", "Tick the box"),
])
def test_a_bad_contact_at_join_is_refused_naming_it_and_no_ticket_is_taken(
        client, location, queue, value, consent, field_message):
    response = client.post(f"/join/{location.slug}/", {"queue": queue.pk, "alert_contact": value,
                                                      "alert_consent": consent})
    assert response.status_code == 400
    assert field_message in response.content.decode()
    assert b'aria-invalid="true"' in response.content
    assert not Ticket.objects.exists() and not Contact.objects.exists()


@pytest.mark.django_db
def test_ticket_page_opt_in_by_email_then_shows_it_masked(client, queue):
    ticket = take_ticket(queue)
    page = client.get(f"/t/{ticket.token}/")
    assert b"Turn on alerts" in page.content
    response = client.post(f"/t/{ticket.token}/alerts", {"channel": "email", "address": "pat@example.org",
                                                         "consent": "yes"})
    assert response.status_code == 302
    page = client.get(f"/t/{ticket.token}/").content.decode()
    assert "EMAIL to p…@example.org" in page and "pat@example.org" not in page
    stop = f'action="/alerts/stop/{Contact.objects.get().stop_token}/"'
    assert stop in page  # the page the notifications open can stop them too
    client.post(f"/alerts/stop/{Contact.objects.get().stop_token}/")
    assert "Alerts on" not in client.get(f"/t/{ticket.token}/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("data, status, text", [
    ({"channel": "sms", "address": "phone", "consent": "yes"}, 400, "not a phone number"),
    ({"channel": "sms", "address": "12", "consent": "yes"}, 400, "does not exist"),
    ({"channel": "email", "address": "x", "consent": "yes"}, 400, "not an e-mail address"),
    ({"channel": "fax", "address": "x", "consent": "yes"}, 400, "Choose SMS or e-mail"),
    ({"channel": "sms", "address": PHONE}, 400, "Tick the box"),
])
def test_ticket_page_refuses_bad_input_naming_the_field(client, queue, data, status, text):
    ticket = take_ticket(queue)
    response = client.post(f"/t/{ticket.token}/alerts", data)
    assert response.status_code == status and text in response.content.decode()
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_push_subscription_checked_and_stored(client, queue, settings):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = generate_keys()
    ticket = take_ticket(queue)
    page = client.get(f"/t/{ticket.token}/").content.decode()
    assert f'data-key="{settings.VAPID_PUBLIC_KEY}"' in page and "alerts.js" in page
    url = f"/t/{ticket.token}/alerts/push"
    _, _, sub = browser_subscription("https://push.example.net/send/abc")
    for bad, field in [({"endpoint": "http://x/1", "keys": sub["keys"]}, "endpoint"),
                       ({"endpoint": sub["endpoint"] + "\x00", "keys": sub["keys"]}, "endpoint"),
                       ({"endpoint": sub["endpoint"], "keys": {"p256dh": "AAAA", "auth": sub["keys"]["auth"]}},
                        "keys.p256dh"),
                       ({"endpoint": sub["endpoint"]}, "keys"), ([], "subscription")]:
        response = client.post(url, json.dumps(bad), content_type="application/json")
        assert response.status_code == 400 and response.json()["field"] == field
    response = client.post(url, b"{", content_type="application/json")
    assert response.status_code == 400
    response = client.post(url, json.dumps(sub), content_type="application/json")
    assert response.status_code == 201
    assert Contact.objects.get().keys == sub["keys"]


@pytest.mark.django_db
def test_push_is_not_offered_without_vapid_keys(client, queue, settings):
    settings.VAPID_PRIVATE_KEY = settings.VAPID_PUBLIC_KEY = ""
    ticket = take_ticket(queue)
    assert b"push-optin" not in client.get(f"/t/{ticket.token}/").content
    _, _, sub = browser_subscription("https://push.example.net/send/abc")
    response = client.post(f"/t/{ticket.token}/alerts/push", json.dumps(sub), content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "channel"


@pytest.mark.django_db
def test_a_manager_asks_for_staff_alerts_by_push_on_the_console_and_stops_them(
        client, location, manager, staff, settings):
    from queueapp.alerts.models import StaffPushSubscription

    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = generate_keys()
    _, _, sub = browser_subscription("https://push.example.net/send/staff")
    url = "/alerts/staff/push"
    assert client.post(url, json.dumps(sub), content_type="application/json").status_code == 401
    client.force_login(staff)  # staff, not a manager: no staff alerts, no button
    assert b"push-optin" not in client.get("/console/").content
    response = client.post(url, json.dumps(sub), content_type="application/json")
    assert response.status_code == 403 and not StaffPushSubscription.objects.exists()
    client.force_login(manager)
    page = client.get("/console/").content.decode()
    assert 'data-scope="/console/"' in page and f'data-key="{settings.VAPID_PUBLIC_KEY}"' in page
    for bad, field in [({"endpoint": "https://push.example.net/\x00", "keys": sub["keys"]}, "endpoint"),
                       ({"endpoint": sub["endpoint"], "keys": {}}, "keys.p256dh"),
                       ({"endpoint": "https://" + "p" * 1000, "keys": sub["keys"]}, "endpoint"),
                       ({"endpoint": sub["endpoint"], "keys": {"p256dh": sub["keys"]["p256dh"], "auth": "\u0663"}},
                        "keys.auth")]:
        response = client.post(url, json.dumps(bad), content_type="application/json")
        assert response.status_code == 400 and response.json()["field"] == field, response.json()
    assert not StaffPushSubscription.objects.exists()
    assert client.post(url, json.dumps(sub), content_type="application/json").status_code == 201
    assert client.post(url, json.dumps(sub), content_type="application/json").status_code == 201  # same browser
    browser = StaffPushSubscription.objects.get()
    assert (browser.user, browser.address, browser.keys) == (manager, sub["endpoint"], sub["keys"])
    page = client.get("/console/").content.decode()
    assert "Notifications on (push.example.net/…)" in page and sub["endpoint"] not in page
    stopped = client.post(f"/alerts/stop/{browser.stop_token}/")
    assert stopped.status_code == 200 and "no more staff alerts" in stopped.content.decode()
    assert not StaffPushSubscription.objects.exists()


@pytest.mark.django_db
def test_service_worker_may_control_ticket_pages(client):
    response = client.get("/alerts/sw.js")
    assert response.status_code == 200 and response["Service-Worker-Allowed"] == "/"
    assert "showNotification" in response.content.decode()


@pytest.mark.django_db
def test_unknown_stop_link_is_a_404(client):
    assert client.post("/alerts/stop/" + "A" * 22 + "/").status_code == 404


@pytest.mark.django_db
def test_create_webhook_prints_the_secret_once_and_it_signs(location):
    out = StringIO()
    call_command("create_webhook", "--location", location.slug, "--url", "https://crm.example.org/hook",
                 "--events", "called,completed", stdout=out)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["called", "completed"]
    assert f"secret (shown once, keep it for verifying signatures): {endpoint.secret}" in out.getvalue()
    Webhook(endpoint.secret)  # a valid whsec_ secret
    with pytest.raises(CommandError, match="--events: unknown kind 'calld'"):
        call_command("create_webhook", "--location", location.slug, "--url", "https://x.org", "--events", "calld")
    with pytest.raises(CommandError, match="--location"):
        call_command("create_webhook", "--location", "nowhere", "--url", "https://x.org")


def test_generate_vapid_keys_prints_a_usable_pair():
    out = StringIO()
    call_command("generate_vapid_keys", stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().split())
    assert set(lines) == {"VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"}
    assert len(lines["VAPID_PUBLIC_KEY"]) == 87  # 65 bytes, base64url without padding


@pytest.mark.django_db
def test_outbox_counts_on_metrics_and_the_statistics_page(client, location, queue, counter, manager):
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook")
    do_join(queue)
    do_call_next(counter=counter)
    OutboxMessage.objects.filter(subject="called").update(state="dead")
    metrics = client.get("/metrics").content.decode()
    assert 'queueapp_alert_messages{channel="webhook",state="pending"} 1.0' in metrics
    assert 'queueapp_alert_messages{channel="webhook",state="dead"} 1.0' in metrics
    client.force_login(manager)
    page = client.get("/stats/").content.decode()
    assert 'id="alert-counts"' in page
    assert "<th>Dead (gave up)</th>" in page


@pytest.mark.django_db
def test_admin_lists_deliveries_and_resets_a_dead_one(admin_client, location, queue):
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/hook")
    do_join(queue)
    message = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=message.pk).update(state="dead", attempts=15)
    listing = admin_client.get("/admin/alerts/outboxmessage/?state=dead")
    assert listing.status_code == 200 and message.message_id in listing.content.decode()
    assert message.message_id not in admin_client.get("/admin/alerts/outboxmessage/?state=delivered").content.decode()
    admin_client.post("/admin/alerts/outboxmessage/", {"action": "reset_dead", "_selected_action": [message.pk]})
    reset = OutboxMessage.objects.get()
    assert (reset.state, reset.attempts) == ("retrying", 0)
    assert reset.created_at == message.created_at and reset.reset_at is not None  # its history kept
    change = admin_client.get(f"/admin/alerts/outboxmessage/{message.pk}/change/")
    assert change.status_code == 200 and "Reset by admin after 15 attempts" in change.content.decode()


@pytest.mark.django_db
def test_admin_shows_a_new_endpoint_secret_once(admin_client, location):
    response = admin_client.post("/admin/alerts/webhookendpoint/add/", {
        "location": location.pk, "url": "https://crm.example.org/hook", "event_types": "[]",
        "is_active": "on"}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret not in admin_client.get(
        f"/admin/alerts/webhookendpoint/{endpoint.pk}/change/").content.decode()


@pytest.mark.django_db
def test_a_manager_runs_alert_rules_endpoints_and_outbox_at_their_location_only(
        client, location, other_location, queue):
    from queueapp.alerts.models import AlertRule
    from queueapp.models import StaffMembership
    from tests.conftest import make_queue, make_user

    dora = make_user("dora", location, StaffMembership.Role.MANAGER, is_staff=True)  # no model permissions
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    WebhookEndpoint.objects.create(location=location, url="http://127.0.0.1:9/mine")
    WebhookEndpoint.objects.create(location=other_location, url="http://127.0.0.1:9/theirs")
    take_ticket(queue)
    take_ticket(elsewhere)
    client.force_login(dora)
    response = client.post("/admin/alerts/alertrule/add/", {"queue": queue.pk, "kind": "ahead", "enabled": "on",
                                                            "threshold": 5, "template": ""})
    assert response.status_code == 302 and AlertRule.objects.get().threshold == 5
    response = client.post("/admin/alerts/alertrule/add/", {"queue": elsewhere.pk, "kind": "ahead",
                                                            "enabled": "on", "threshold": 2, "template": ""})
    assert response.status_code == 200 and AlertRule.objects.count() == 1  # not a choice for her
    response = client.post("/admin/alerts/alertrule/add/", {"queue": queue.pk, "kind": "called",
                                                            "enabled": "on", "template": "{nope}"})
    assert "Unknown field {nope}" in response.content.decode()
    endpoints = client.get("/admin/alerts/webhookendpoint/").content.decode()
    assert "/mine" in endpoints and "/theirs" not in endpoints
    outbox = client.get("/admin/alerts/outboxmessage/").content.decode()
    mine, theirs = (OutboxMessage.objects.get(endpoint__url__endswith=s).message_id for s in ("mine", "theirs"))
    assert mine in outbox and theirs not in outbox
