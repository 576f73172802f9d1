"""The ticket page's opt-in in a real browser (Debian's Chromium through Playwright).

Web push, end to end with one stand-in: headless Chromium reaches no push
service, so the page is given a PushManager whose subscribe() returns a
subscription holding a P-256 key pair and auth secret this test generated, at
an https endpoint served by the test (the push service's stand-in). Everything
else is real: the page's script, the service worker, the server storing the
subscription, the worker encrypting to it (pywebpush), the test decrypting
with its private key, Chromium's own push event (DevTools' deliverPushMessage)
showing the notification with its "Stop alerts" action, and the page's stop.
"""

import json
import os
import time

import http_ece
import pytest

from queueapp.alerts import delivery
from queueapp.alerts.models import Contact, OutboxMessage
from queueapp.alerts.push import generate_keys
from queueapp.models import Ticket
from queueapp.services import do_call_next
from tests.alerts_support import Receiver, deliver_until, self_signed_certificate, take_ticket
from tests.browser_support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, database_url_for, launch, serve
from tests.conftest import make_counter, make_queue
from tests.test_alerts_delivery import browser_subscription

pytestmark = [
    *BROWSER_MARKS,
]

PRIVATE, PUBLIC = generate_keys()


@pytest.fixture(scope="module")
def server_url(django_db_setup, django_db_blocker):
    from django.db import connection

    with serve(database_url_for(connection.settings_dict), VAPID_PRIVATE_KEY=PRIVATE,
               VAPID_PUBLIC_KEY=PUBLIC) as url:
        yield url


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def ticket(transactional_db):
    from queueapp.models import Location

    location = Location.objects.create(name="Riverside Clinic", slug="riverside", timezone="Europe/Paris")
    return take_ticket(make_queue(location, "General", "A"))


def watch(page, errors: list):
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


# The browser's side of a subscription, replaced by one holding the test's keys:
# subscribe() checks it was given the server's VAPID key, and the subscription
# survives a reload (as a real one does) until unsubscribe() is called.
FAKE_PUSH_MANAGER = """
(() => {
  const sub = %(sub)s, vapid = %(vapid)s;
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")
      + "===".slice((s.length + 3) %% 4)), (c) => c.charCodeAt(0)).buffer;
  function subscription() {
    return {
      endpoint: sub.endpoint, expirationTime: null,
      getKey: (name) => bytes(sub.keys[name]),
      toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: sub.keys }),
      unsubscribe: async () => { localStorage.setItem("push-state", "unsubscribed"); return true; },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    if (b64(options.applicationServerKey) !== vapid) throw new Error("not the server's VAPID key");
    localStorage.setItem("push-state", "subscribed");
    return subscription();
  };
  PushManager.prototype.getSubscription = async function () {
    return localStorage.getItem("push-state") === "subscribed" ? subscription() : null;
  };
})();
"""


@pytest.fixture
def push_service(tmp_path, monkeypatch):
    """The push service's stand-in: https on 127.0.0.1 with a certificate the
    worker's HTTP client (requests, under pywebpush) is told to trust."""
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with Receiver(statuses=[201], default=201, tls=(cert, key)) as receiver:
        yield receiver


def test_push_opt_in_stores_the_browsers_subscription_and_its_pushes_decrypt_and_show_a_stop_action(
        server_url, playwright, ticket, push_service, settings, tmp_path):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = PRIVATE, PUBLIC  # the worker's, as the server's
    private, auth, subscription = browser_subscription(push_service.url)
    endpoint, keys = subscription["endpoint"], subscription["keys"]
    # A profile on disk: Chromium refuses the Push API outright in incognito contexts.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context.grant_permissions(["notifications"], origin=server_url)
    context.add_init_script(FAKE_PUSH_MANAGER % {
        "sub": json.dumps({"endpoint": endpoint, "keys": keys}), "vapid": json.dumps(PUBLIC)})
    errors: list[str] = []
    page = watch(context.new_page(), errors)
    page.goto(f"{server_url}/t/{ticket.token}/")
    button = page.locator("#push-optin")
    button.click()
    page.wait_for_function("() => document.getElementById('push-status').textContent"
                           " === 'Notifications are on for this browser.'", timeout=20_000)
    contact = Contact.objects.get(ticket=ticket)
    assert (contact.channel, contact.address, contact.keys) == ("push", endpoint, keys)
    scope = page.evaluate("async () => (await navigator.serviceWorker.getRegistration('/t/'))?.scope")
    assert scope == f"{server_url}/t/"
    page.reload()
    assert page.locator("#alerts-on").text_content() == "Alerts on: this browser."

    # The worker pushes "it's your turn" to the endpoint; only the test's key reads it.
    do_call_next(counter=make_counter(ticket.queue.location, "Counter 3", [ticket.queue]))
    deliver_until(lambda: OutboxMessage.objects.get(kind="called").state == "delivered")
    request = push_service.requests[-1]
    assert request["headers"]["content-encoding"] == "aes128gcm"
    pushed = json.loads(http_ece.decrypt(request["body"], private_key=private, auth_secret=auth,
                                         version="aes128gcm"))
    ticket_url = f"{settings.ALERTS_BASE_URL}/t/{ticket.token}/"
    stop_url = f"{settings.ALERTS_BASE_URL}/alerts/stop/{contact.stop_token}/"
    assert pushed["body"] == f"Riverside Clinic: it's your turn, ticket {ticket.display_number}: go to Counter 3."
    assert (pushed["url"], pushed["stop"], pushed["stop_title"]) == (ticket_url, stop_url, "Stop alerts")

    # Chromium's own push event carries that payload to the service worker, which shows it.
    # (What it asks to show is recorded: headless Chromium may close a shown notification at once.)
    worker = next(w for w in context.service_workers if w.url.endswith("/alerts/sw.js"))
    worker.evaluate("""() => {
        const show = self.registration.showNotification.bind(self.registration);
        self.shown = [];
        self.registration.showNotification = (title, options) => {
            self.shown.push({title, body: options.body, data: options.data,
                             actions: (options.actions || []).map((a) => [a.action, a.title])});
            return show(title, options);
        };
    }""")
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not [r for r in registrations if r["scopeURL"] == f"{server_url}/t/" and not r["isDeleted"]]:
        assert time.monotonic() < deadline, registrations
        page.wait_for_timeout(50)
    registration_id = next(r["registrationId"] for r in registrations if r["scopeURL"] == f"{server_url}/t/")
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": server_url, "registrationId": registration_id,
                                                  "data": json.dumps(pushed)})
    deadline = time.monotonic() + 10
    while not (shown := worker.evaluate("self.shown")):
        assert time.monotonic() < deadline, "the service worker showed no notification"
        page.wait_for_timeout(50)
    assert shown == [{"title": f"It's your turn ({ticket.display_number})", "body": pushed["body"],
                      "data": {"url": ticket_url, "stop": stop_url}, "actions": [["stop", "Stop alerts"]]}]
    # Where a click goes: the stop link from the action, the ticket page from the notification.
    assert worker.evaluate("[clickTarget(self.shown[0].data, 'stop'), clickTarget(self.shown[0].data, '')]") == [
        stop_url, ticket_url]

    # Stop from the page: the server erases the subscription and the browser unsubscribes.
    page.click("text=Stop browser notifications")
    page.wait_for_selector("text=Alerts stopped")
    contact.refresh_from_db()
    assert contact.stopped_at is not None and contact.address == "" and contact.keys == {}
    assert page.evaluate("localStorage.getItem('push-state')") == "unsubscribed"
    sent = len(push_service.requests)
    from queueapp.services import do_recall

    do_recall(Ticket.objects.get(pk=ticket.pk))
    delivery.deliver_due()
    assert list(OutboxMessage.objects.values_list("reason", flat=True)) == ["called:1"]  # nothing due after stop
    assert len(push_service.requests) == sent
    assert errors == []
    context.close()


def test_ticket_page_sms_opt_in_form(server_url, browser, ticket):
    context = browser.new_context()
    errors: list[str] = []
    page = watch(context.new_page(), errors)
    page.goto(f"{server_url}/t/{ticket.token}/")
    page.check("input[name=channel][value=sms]")
    page.fill("input[name=address]", "06 12 34 56 78")
    page.click("text=Turn on alerts")
    assert "Tick the box" in page.locator("#alerts-error").text_content()  # refused: no consent
    page.fill("input[name=address]", "06 12 34 56 78")
    page.check("input[name=consent]")
    page.click("text=Turn on alerts")
    page.wait_for_selector("#alerts-on")
    assert page.locator("#alerts-on").text_content() == "Alerts on: SMS to …678."
    assert Contact.objects.get(ticket=ticket).address == "+33612345678"
    # The refused POST (400, as it should) is logged by the browser; nothing else may be.
    assert [e for e in errors if "status of 400 (Bad Request)" not in e] == []
    context.close()
