"""The admin: list pages under a fixed query budget, read-only audit trail,
ticket history, actions through the services, search, CSV exports, integrity page."""

import csv
import io

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from queueapp.models import QueueEvent, StaffMembership, Ticket, TicketStatus
from queueapp.services import do_call_next, do_complete, do_join, do_no_show, do_start_serving, do_transfer
from tests.conftest import make_counter, make_queue, make_user

pytestmark = pytest.mark.django_db

LIST_PAGES = ["location", "staffmembership", "queue", "counter", "ticket", "queueevent", "apitoken"]


def busy_day(location, queue, counter, staff, tickets: int) -> None:
    """Tickets in every state, with events by a named person."""
    for _ in range(tickets):
        do_join(queue)
    for _ in range(tickets // 2):
        ticket = do_call_next(counter=counter, acting_user=staff)
        do_start_serving(ticket, acting_user=staff)
        do_complete(ticket, acting_user=staff)


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(ctx)


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    # The manifest storage needs `collectstatic`; pages under test only need URLs.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def superuser(db):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def root_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("model", LIST_PAGES)
def test_list_pages_make_the_same_number_of_queries_for_few_and_many_rows(
        model, root_client, location, queue, counter, staff, django_assert_max_num_queries):
    url = reverse(f"admin:queueapp_{model}_changelist")
    busy_day(location, queue, counter, staff, 4)
    few = count_queries(root_client, url)
    other = make_queue(location, "Lab", "L")
    for i in range(2, 12):
        make_counter(location, f"Counter {i}", [queue, other])
        make_user(f"user{i}", location)
    busy_day(location, other, make_counter(location, "Lab desk", [other]), staff, 16)
    with django_assert_max_num_queries(few):
        root_client.get(url)
    with django_assert_max_num_queries(14):  # the budget, whatever the rows
        root_client.get(url)


def test_ticket_list_filters_by_location_queue_status_and_day(root_client, queue, counter, staff):
    busy_day(queue.location, queue, counter, staff, 4)
    url = reverse("admin:queueapp_ticket_changelist")
    page = root_client.get(url, {"status__exact": "completed", "queue__id__exact": queue.pk,
                                 "queue__location__id__exact": queue.location_id,
                                 "business_day": Ticket.objects.first().business_day.isoformat()})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2


def test_search_finds_a_ticket_by_display_number_plain_number_or_token(root_client, queue):
    tickets = [do_join(queue) for _ in range(12)]
    url = reverse("admin:queueapp_ticket_changelist")
    for term in ("A-012", "a-12", "12", tickets[11].token):
        found = list(root_client.get(url, {"q": term}).context["cl"].result_list)
        assert [t.pk for t in found] == [tickets[11].pk], term
    events = root_client.get(reverse("admin:queueapp_queueevent_changelist"), {"q": tickets[2].token})
    assert [e.ticket_id for e in events.context["cl"].result_list] == [tickets[2].pk]
    assert root_client.get(url, {"q": "no-such-token"}).context["cl"].result_count == 0


def test_events_cannot_be_added_changed_or_deleted_in_the_admin_even_by_a_superuser(
        root_client, queue):
    do_join(queue)
    event = QueueEvent.objects.get()
    assert root_client.get(reverse("admin:queueapp_queueevent_add")).status_code == 403
    assert root_client.get(reverse("admin:queueapp_queueevent_delete", args=[event.pk])).status_code == 403
    page = root_client.get(reverse("admin:queueapp_queueevent_change", args=[event.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    posted = root_client.post(reverse("admin:queueapp_queueevent_change", args=[event.pk]),
                              {"kind": "cancelled"})
    assert posted.status_code == 403
    assert QueueEvent.objects.get().kind == "joined"


def test_ticket_status_cannot_be_edited_in_the_admin(root_client, queue):
    ticket = do_join(queue)
    url = reverse("admin:queueapp_ticket_change", args=[ticket.pk])
    response = root_client.post(url, {"status": "completed", "note": "x"})
    assert response.status_code == 403
    assert Ticket.objects.get().status == TicketStatus.WAITING
    assert root_client.get(reverse("admin:queueapp_ticket_add")).status_code == 403


def test_queue_service_owned_fields_are_read_only(root_client, queue):
    response = root_client.get(reverse("admin:queueapp_queue_change", args=[queue.pk]))
    form_fields = response.context["adminform"].form.fields
    for owned in ("version", "is_paused", "last_number", "seats_taken", "capacity"):
        assert owned not in form_fields


def test_ticket_page_shows_its_history_in_order_with_who_did_what(root_client, location, queue, counter):
    alice = make_user("alice", location)
    lab = make_queue(location, "Lab", "L")
    joined = do_join(queue)
    do_call_next(counter=counter, acting_user=alice)
    moved = do_transfer(joined, to_queue=lab, acting_user=alice)
    page = root_client.get(reverse("admin:queueapp_ticket_change", args=[moved.pk])).content.decode()
    history = page[page.index("What happened, in order"):]
    order = [history.index(word) for word in ("Joined", "Called", "Transferred Out", "Transferred In")]
    assert order == sorted(order)
    assert "alice" in history and "A-001" in history and "L-001" in history


def test_admin_actions_go_through_the_services_and_leave_events(root_client, superuser, queue, counter):
    do_join(queue)
    called = do_call_next(counter=counter)
    changelist = reverse("admin:queueapp_ticket_changelist")
    root_client.post(changelist, {"action": "complete", "_selected_action": [called.pk]})
    called.refresh_from_db()
    assert called.status == TicketStatus.COMPLETED
    event = QueueEvent.objects.filter(ticket=called).last()
    assert (event.kind, event.actor) == ("completed", superuser)


def test_admin_action_refusal_is_shown_and_changes_nothing(root_client, queue):
    waiting = do_join(queue)
    changelist = reverse("admin:queueapp_ticket_changelist")
    response = root_client.post(changelist, {"action": "no_show", "_selected_action": [waiting.pk]},
                                follow=True)
    assert "Cannot mark as no-show A-001" in response.content.decode()
    assert Ticket.objects.get().status == TicketStatus.WAITING
    assert QueueEvent.objects.count() == 1


def test_staff_admin_user_sees_and_acts_only_at_their_location(client, location, other_location, queue):
    theirs = make_queue(other_location, "Elsewhere", "E")
    do_join(queue)
    foreign = do_join(theirs)
    user = make_user("dora", location, StaffMembership.Role.MANAGER, is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(codename__in=["view_ticket", "view_queue"]))
    client.force_login(user)
    listed = client.get(reverse("admin:queueapp_ticket_changelist")).context["cl"].result_list
    assert [t.queue_id for t in listed] == [queue.pk]
    assert client.get(reverse("admin:queueapp_ticket_change", args=[foreign.pk])).status_code == 302
    client.post(reverse("admin:queueapp_queue_changelist"),
                {"action": "pause", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert not theirs.is_paused


def test_queue_pause_action_pauses_through_the_service(root_client, queue):
    root_client.post(reverse("admin:queueapp_queue_changelist"),
                     {"action": "pause", "_selected_action": [queue.pk]})
    queue.refresh_from_db()
    assert queue.is_paused
    assert QueueEvent.objects.get(queue=queue).kind == "paused"


def read_stream(response) -> str:
    async def collect():
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(collect)().decode()


def test_ticket_csv_export_streams_the_chosen_days(root_client, queue, counter, staff):
    busy_day(queue.location, queue, counter, staff, 6)
    day = Ticket.objects.first().business_day.isoformat()
    response = root_client.get(reverse("admin:queueapp_ticket_export"), {"start": day, "end": day})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(read_stream(response))))
    assert len(rows) == 6
    assert {r["number"] for r in rows} == {f"A-00{i}" for i in range(1, 7)}
    assert sum(r["status"] == "completed" for r in rows) == 3


def far_zone(now) -> str:
    """A time zone whose date differs from UTC's at `now` (+14 h late in the
    UTC day, -11 h early in it): a server-day default cannot pass for it."""
    return "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"


def test_ticket_export_of_an_empty_range_is_the_locations_business_day(root_client, location, queue):
    from django.utils import timezone

    location.timezone = far_zone(timezone.now())
    location.save()
    today = location.business_day()
    assert today != timezone.now().date()
    do_join(queue)  # today's ticket there
    response = root_client.get(reverse("admin:queueapp_ticket_export"), {"start": "", "end": ""})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(read_stream(response))))
    assert [r["business_day"] for r in rows] == [today.isoformat()]
    assert f"tickets-{today}-{today}.csv" in response["Content-Disposition"]


def test_event_csv_export_pages_through_many_rows(root_client, queue, counter, staff, monkeypatch):
    busy_day(queue.location, queue, counter, staff, 10)
    from queueapp import reports

    original = reports.stream_queryset_csv
    monkeypatch.setattr("queueapp.admin.stream_queryset_csv",
                        lambda *a, **k: original(*a, **{**k, "chunk": 7}))
    day = QueueEvent.objects.first().created_at.date().isoformat()
    response = root_client.get(reverse("admin:queueapp_queueevent_export"), {"start": day, "end": day})
    rows = list(csv.DictReader(io.StringIO(read_stream(response))))
    assert len(rows) == QueueEvent.objects.count() == 25
    assert [int(r["version"]) for r in rows] == list(range(1, 26))
    assert rows[-1]["actor"] == "alice" and rows[-1]["kind"] == "completed"


def test_export_refuses_a_reversed_range_with_a_message(root_client):
    response = root_client.get(reverse("admin:queueapp_ticket_export"),
                               {"start": "2026-03-05", "end": "2026-03-01"})
    assert response.status_code == 400
    assert "must be on or before" in response.content.decode()
    bad = root_client.get(reverse("admin:queueapp_queueevent_export"), {"start": "yesterday"})
    assert bad.status_code == 400 and "Enter a valid date" in bad.content.decode()


def test_integrity_page_shows_a_clean_report_then_the_problem(root_client, queue):
    do_join(queue)
    do_join(queue)
    url = reverse("admin:queueapp_integrity")
    assert 'data-problems="0"' in root_client.get(url).content.decode()
    # Break a rule the database cannot: a gap in the numbers.
    Ticket.objects.filter(number=1).update(number=5)
    page = root_client.get(url).content.decode()
    assert 'data-problems="0"' not in page and "missing_number" in page


def test_no_show_requeue_is_in_the_history(root_client, queue, counter, staff):
    do_join(queue)
    ticket = do_call_next(counter=counter, acting_user=staff)
    do_no_show(ticket, acting_user=staff)
    page = root_client.get(reverse("admin:queueapp_ticket_change", args=[ticket.pk])).content.decode()
    assert "Requeued" in page and "no_show_count=1" in page


def test_exports_and_integrity_page_need_view_permission(client, location):
    clerk = make_user("eve", location, is_staff=True)  # admin access, no model permissions
    client.force_login(clerk)
    for name in ("admin:queueapp_integrity", "admin:queueapp_ticket_export", "admin:queueapp_queueevent_export"):
        assert client.get(reverse(name)).status_code == 403, name


def test_admin_home_links_to_statistics_and_the_integrity_report(root_client):
    page = root_client.get(reverse("admin:index")).content.decode()
    assert reverse("stats") in page and reverse("admin:queueapp_integrity") in page


def test_a_waiting_tickets_page_shows_its_place_and_wait_range(root_client, queue):
    do_join(queue)
    third = [do_join(queue) for _ in range(2)][-1]
    page = root_client.get(reverse("admin:queueapp_ticket_change", args=[third.pk])).content.decode()
    # No history yet: the default 5 min per person, two ahead and half of the
    # one at the counter (estimates._ahead): 12.5 min, shown as a wide range (x0.5-1.5).
    assert "#3 in line; called in about 6–19 min (little recent history" in page


def test_forms_offer_only_the_users_own_locations(client, location, other_location, queue):
    from django.contrib.auth.models import Permission

    make_queue(other_location, "Elsewhere", "E")
    user = make_user("fred", location, StaffMembership.Role.MANAGER, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["add_counter", "add_staffmembership"]))
    client.force_login(user)
    form = client.get(reverse("admin:queueapp_counter_add")).context["adminform"].form
    assert list(form.fields["location"].queryset) == [location]
    assert list(form.fields["queues"].queryset) == [queue]
    membership = client.get(reverse("admin:queueapp_staffmembership_add")).context["adminform"].form
    assert list(membership.fields["location"].queryset) == [location]
