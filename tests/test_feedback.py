"""Feedback after a visit: the ticket page asks for a 1-5 rating and an optional
comment once the visit is complete; once, within a day; clear refusals after,
or twice; hostile input refused without writing; comments stay personal data
(admin only, gone with the ticket)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from queueapp.errors import InvalidInput, InvalidTransition
from queueapp.models import Feedback, QueueEvent, Ticket
from queueapp.services import do_call_next, do_complete, do_give_feedback, do_join, do_start_serving
from queueapp.services.retention import do_purge_location
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

COMMENT = "Dr. Who was kind; call me on +44 20 7946 0000"


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def served(queue, counter, staff=None) -> Ticket:
    ticket = do_join(queue)
    do_call_next(counter=counter, acting_user=staff)
    do_start_serving(ticket, acting_user=staff)
    return do_complete(ticket, acting_user=staff)


def post(client, ticket, **data):
    return client.post(reverse("ticket-feedback", args=[ticket.token]), data)


def test_a_completed_visit_is_rated_once_from_its_page(client, queue, counter):
    ticket = served(queue, counter)
    page = client.get(reverse("ticket", args=[ticket.token])).content.decode()
    assert "Rate your visit" in page and 'name="rating"' in page
    response = post(client, ticket, rating="4", comment=COMMENT)
    assert response.status_code == 302
    feedback = Feedback.objects.get(ticket=ticket)
    assert (feedback.rating, feedback.comment) == (4, COMMENT)
    page = client.get(reverse("ticket", args=[ticket.token])).content.decode()
    assert "Thank you for your feedback" in page and 'name="rating"' not in page
    again = post(client, ticket, rating="1")
    assert again.status_code == 409 and "already rated" in again.content.decode()
    assert Feedback.objects.get(ticket=ticket).rating == 4


def test_the_form_waits_on_the_page_of_a_visit_in_progress_and_is_refused_until_complete(client, queue, counter):
    ticket = do_join(queue)
    page = client.get(reverse("ticket", args=[ticket.token])).content.decode()
    assert 'class="feedback"' in page  # app.css shows it once the live fragment says completed
    response = post(client, ticket, rating="5")
    assert response.status_code == 409 and "once your visit is complete" in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_day_after_completion_the_rating_is_refused_in_words(client, queue, counter):
    ticket = served(queue, counter)
    Ticket.objects.filter(pk=ticket.pk).update(finished_at=timezone.now() - timedelta(days=1, seconds=5))
    page = client.get(reverse("ticket", args=[ticket.token])).content.decode()
    assert 'name="rating"' not in page
    response = post(client, ticket, rating="5")
    assert response.status_code == 409 and "within a day" in response.content.decode()
    with pytest.raises(InvalidTransition):
        do_give_feedback(ticket, rating=5)
    assert not Feedback.objects.exists()


def test_just_inside_the_day_is_still_taken(queue, counter):
    ticket = served(queue, counter)
    do_give_feedback(ticket, rating=2, now=ticket.finished_at + timedelta(hours=23, minutes=59))
    assert Feedback.objects.get().rating == 2


@pytest.mark.parametrize("data, field, words", [
    ({"rating": "0"}, "rating", "from 1 to 5"),
    ({"rating": "6"}, "rating", "from 1 to 5"),
    ({"rating": ""}, "rating", "from 1 to 5"),
    ({"rating": "４"}, "rating", "from 1 to 5"),  # full-width digit
    ({"rating": "٤"}, "rating", "from 1 to 5"),  # Arabic-Indic digit
    ({"rating": "9" * 40}, "rating", "from 1 to 5"),
    ({"rating": "3", "comment": "a\x00b"}, "comment", "Null characters are not allowed"),
    ({"rating": "3", "comment": "x" * 1001}, "comment", "at most 1000 characters"),
])
def test_hostile_input_is_refused_naming_the_field_and_writes_nothing(client, queue, counter, data, field, words):
    ticket = served(queue, counter)
    response = post(client, ticket, **data)
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not Feedback.objects.exists()


def test_the_service_checks_what_the_form_checks(queue, counter):
    ticket = served(queue, counter)
    for rating in (0, 6, True, "5"):
        with pytest.raises(InvalidInput):
            do_give_feedback(ticket, rating=rating)
    with pytest.raises(InvalidInput):
        do_give_feedback(ticket, rating=3, comment="y" * 1001)
    assert not Feedback.objects.exists()


def test_markup_in_a_comment_is_kept_as_text_and_escaped_in_the_admin(client, queue, counter):
    ticket = served(queue, counter)
    post(client, ticket, rating="3", comment="<script>alert(1)</script>")
    assert Feedback.objects.get().comment == "<script>alert(1)</script>"
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.get(reverse("admin:queueapp_feedback_changelist")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_comments_are_in_the_admin_for_the_locations_managers_only(client, location, other_location, queue,
                                                                   counter):
    from queueapp.models import StaffMembership
    from tests.conftest import make_counter, make_queue

    do_give_feedback(served(queue, counter), rating=5, comment="Mine: lovely")
    elsewhere = make_queue(other_location, "Elsewhere", "E")
    do_give_feedback(served(elsewhere, make_counter(other_location, "Desk 9", [elsewhere])), rating=1,
                     comment="Theirs: slow")
    dora = make_user("dora", location, StaffMembership.Role.MANAGER, is_staff=True)  # no model permissions
    client.force_login(dora)
    page = client.get(reverse("admin:queueapp_feedback_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Mine: lovely" in html and "Theirs: slow" not in html
    theirs = Feedback.objects.get(comment="Theirs: slow")
    assert client.get(reverse("admin:queueapp_feedback_change", args=[theirs.pk])).status_code in (302, 403, 404)
    mine = Feedback.objects.get(comment="Mine: lovely")
    assert client.post(reverse("admin:queueapp_feedback_delete", args=[mine.pk]), {"post": "yes"}).status_code == 403
    assert Feedback.objects.count() == 2
    plain_staff = make_user("erin", location, is_staff=True)
    client.force_login(plain_staff)
    assert client.get(reverse("admin:queueapp_feedback_changelist")).status_code == 403


def test_a_comment_never_reaches_events_or_public_screens(client, location, queue, counter):
    ticket = served(queue, counter)
    events_before = QueueEvent.objects.count()
    post(client, ticket, rating="2", comment=COMMENT)
    assert QueueEvent.objects.count() == events_before  # a rating is no queue event
    assert not any(COMMENT in str(e.data) for e in QueueEvent.objects.all())
    display = client.get(reverse("display", args=[location.slug])).content.decode()
    assert COMMENT not in display and "+44" not in display
    assert COMMENT not in client.get(reverse("ticket", args=[ticket.token])).content.decode()


def test_retention_deletes_the_rating_and_comment_with_their_ticket(location, queue, counter, settings, tmp_path):
    settings.RETENTION_ARCHIVE_DIR = tmp_path
    ticket = served(queue, counter)
    do_give_feedback(ticket, rating=4, comment=COMMENT)
    location.retention_days = 1
    location.save()
    do_purge_location(location, by="test", now=timezone.now() + timedelta(days=3))
    assert not Ticket.objects.filter(pk=ticket.pk).exists()
    assert not Feedback.objects.exists()
    archived = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert COMMENT not in archived


@pytest.mark.django_db(transaction=True)
def test_two_ratings_sent_at_once_give_one_rating_and_one_refusal(queue, counter):
    if connection.vendor != "postgresql":
        pytest.skip("row locks between threads: PostgreSQL (SQLite serialises writers anyway)")
    ticket = served(queue, counter)
    barrier, outcomes = threading.Barrier(2), []

    def rate(value):
        try:
            barrier.wait()
            do_give_feedback(ticket.pk, rating=value)
            outcomes.append("ok")
        except InvalidTransition as error:
            outcomes.append(error.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(v,)) for v in (1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["You already rated this visit. Thank you!", "ok"]
    assert Feedback.objects.count() == 1
