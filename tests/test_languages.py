"""Which language each page, ticket, alert and live fragment speaks (issue 15)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from queueapp.alerts import texts
from queueapp.languages import accepted, visitor_language
from queueapp.live import reads, render
from queueapp.models import StaffPreference, Ticket
from queueapp.services import InvalidInput, do_join, do_set_ticket_language, do_transfer
from tests.conftest import make_queue
from tests.pages_helpers import generous_rate_limits  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def multilingual(location):
    location.default_language = "de"
    location.languages = ["en", "ar"]
    location.save()
    return location


def test_a_location_offers_its_default_first_then_its_other_languages(multilingual):
    assert multilingual.offered_languages == ["de", "en", "ar"]


@pytest.mark.parametrize("header, expected", [
    ("ar-EG,ar;q=0.9,en;q=0.5", "ar"),     # a regional tag matches its language
    ("fr-FR,fr;q=0.9,en;q=0.8", "en"),     # French is not offered: the next the browser accepts
    ("fr-FR", "de"),                       # nothing offered: the location's default
    ("", "de"),
    ("es", "de"),                          # Spanish is shipped but not offered here
])
def test_the_browser_language_is_the_first_guess_limited_to_what_the_location_offers(
        multilingual, rf, header, expected):
    assert visitor_language(rf.get("/", HTTP_ACCEPT_LANGUAGE=header), multilingual) == expected


def test_a_visitors_pick_wins_over_the_browser_but_only_among_the_offered(multilingual, rf):
    assert visitor_language(rf.get("/?lang=ar", HTTP_ACCEPT_LANGUAGE="en"), multilingual) == "ar"
    assert visitor_language(rf.get("/?lang=es", HTTP_ACCEPT_LANGUAGE="en"), multilingual) == "en"
    assert accepted("de;q=0.1, ar;q=0.9", ["de", "ar"]) == "ar"  # by quality, not by order


def test_picking_arabic_on_the_kiosk_gives_an_rtl_page_and_an_arabic_ticket(multilingual, queue):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(reverse("kiosk", args=[multilingual.slug]) + "?lang=ar").text
    assert '<html lang="ar" dir="rtl">' in page
    assert 'name="language" value="ar"' in page  # the form carries the pick to the ticket
    assert 'href="?lang=de"' in page and 'href="?lang=en"' in page
    response = client.post(reverse("kiosk", args=[multilingual.slug]), {"queue": queue.pk, "language": "ar"})
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.language == "ar"
    # The ticket's pages speak its language whatever the browser asks for.
    for url in (response["Location"], reverse("ticket", args=[ticket.token])):
        assert '<html lang="ar" dir="rtl">' in client.get(url, HTTP_ACCEPT_LANGUAGE="de").text


def test_the_join_page_follows_accept_language_and_the_ticket_remembers_it(multilingual, queue):
    client = Client(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert '<html lang="en" dir="ltr">' in client.get(reverse("join", args=[multilingual.slug])).text
    client.post(reverse("join", args=[multilingual.slug]), {"queue": queue.pk, "language": "en"})
    assert Ticket.objects.get().language == "en"


def test_a_language_the_location_does_not_offer_is_refused_by_the_service(multilingual, queue):
    with pytest.raises(InvalidInput) as refused:
        do_join(queue, language="es")
    assert refused.value.field == "language"
    assert not Ticket.objects.exists()
    assert do_join(queue).language == "de"  # none given: the location's default


def test_the_holder_changes_the_language_on_the_ticket_page(multilingual, queue):
    ticket = do_join(queue, language="en")
    client = Client()
    response = client.post(reverse("ticket-language", args=[ticket.token]), {"language": "ar"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.language == "ar"
    page = client.get(reverse("ticket", args=[ticket.token])).text
    assert '<html lang="ar" dir="rtl">' in page and 'aria-current="true"' in page


def test_a_bad_language_on_the_ticket_page_is_refused_in_words_and_changes_nothing(multilingual, queue):
    ticket = do_join(queue, language="en")
    client = Client()
    response = client.post(reverse("ticket-language", args=[ticket.token]), {"language": "es\x00"}, follow=True)
    assert "Choose one of the languages offered here" in response.text
    ticket.refresh_from_db()
    assert ticket.language == "en"
    with pytest.raises(InvalidInput):
        do_set_ticket_language(ticket, language="xx")


def test_a_transferred_ticket_keeps_its_holders_language(multilingual, queue):
    other = make_queue(multilingual, "Pharmacy", "P")
    ticket = do_join(queue, language="ar")
    do_transfer(ticket, to_queue=other)
    assert Ticket.objects.get(queue=other).language == "ar"


def test_staff_pages_follow_the_staff_members_choice(client, staff, location):
    client.force_login(staff)
    page = client.get(reverse("console-home"), HTTP_ACCEPT_LANGUAGE="en").text
    assert '<html lang="en" dir="ltr">' in page
    response = client.post(reverse("staff-language"), {"language": "de", "next": "/console/"})
    assert response.status_code == 302 and response["Location"] == "/console/"
    assert StaffPreference.objects.get(user=staff).language == "de"
    # Stored on the user: another browser (Accept-Language English, no cookie) gets German too.
    other = Client(HTTP_ACCEPT_LANGUAGE="en")
    other.force_login(staff)
    assert '<html lang="de" dir="ltr">' in other.get(reverse("console-home")).text
    # An off-site `next` is not followed.
    response = client.post(reverse("staff-language"), {"language": "ar", "next": "https://evil.example/"})
    assert response["Location"] == reverse("console-home")


def test_the_api_takes_the_holders_language(client, staff, multilingual, queue):
    client.force_login(staff)
    url = f"/api/queues/{queue.pk}/tickets"
    response = client.post(url, {"language": "ar"}, content_type="application/json")
    assert response.status_code == 201, response.text
    assert Ticket.objects.get().language == "ar"
    refused = client.post(url, {"language": "fr"}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["field"] in ("language", "body.language")
    not_offered = client.post(url, {"language": "es"}, content_type="application/json")
    assert not_offered.status_code == 400 and not_offered.json()["field"] == "language"
    assert Ticket.objects.count() == 1


def test_alert_texts_speak_the_tickets_language():
    fields = {"location": "Riverside", "number": "A-017", "counter": "Schalter 3"}
    subject, text = texts.render("called", fields, language="de")
    assert subject == "Sie sind dran (A-017)"
    assert text == "Riverside: Sie sind dran, Nummer A-017: Bitte gehen Sie zu Schalter 3."
    assert texts.render("called", fields, language="ar")[0] == "حان دورك (A-017)"
    assert texts.render("called", fields, template="{number} -> {counter}", language="ar")[1] == \
        "A-017 -> Schalter 3"  # a manager's own template is sent as written


def test_the_live_fragment_is_rendered_per_language_and_shared_within_one(multilingual, queue):
    render._ticket_cache.clear()
    first, second = do_join(queue, language="ar"), do_join(queue, language="ar")
    german = do_join(queue, language="de")
    views = {t.token: reads.ticket_view(t.token) for t in (first, second, german)}
    for view in views.values():
        view.position = 2  # the same place: only the number and language differ
    arabic_html = render.ticket_status(views[first.token])
    assert render.ticket_status(views[second.token]) == arabic_html.replace(first.display_number,
                                                                            second.display_number)
    assert len(render._ticket_cache) == 1  # two Arabic screens, one render
    german_html = render.ticket_status(views[german.token])
    assert len(render._ticket_cache) == 2  # German is rendered on its own
    assert translation.get_language() not in (None, "ar")  # the override did not leak
    assert german_html != arabic_html.replace(first.display_number, german.display_number)


def test_a_counter_state_is_a_whole_sentence_in_each_language_not_a_lowercased_label(
        client, staff, counter, queue):
    """German nouns keep their capital: the state is not a label spliced into a
    sentence; and the console's Open button (an action) is not the state Open."""
    from queueapp.services import CounterNotOpen, InvalidTransition, do_call_next, do_set_counter_state

    StaffPreference.objects.create(user=staff, language="de")
    client.force_login(staff)
    answer = client.post(reverse("console-act", args=[counter.pk]), {"action": "break", "reason": "lunch"},
                         HTTP_HX_REQUEST="true").text
    assert "Counter 1 ist in der Mittagspause." in answer
    page = client.get(reverse("console", args=[counter.pk])).text
    assert ">Öffnen</button>" in page  # the action
    assert "Geöffnet" not in page and "In der Mittagspause</span>" in page  # the state, capitalised
    with translation.override("de"):
        with pytest.raises(CounterNotOpen, match=r"^Counter 1 ist in der Mittagspause; öffnen Sie"):
            do_call_next(queue, counter=counter, acting_user=staff)
        with pytest.raises(InvalidTransition, match=r"^Counter 1 ist bereits in der Mittagspause\.$"):
            do_set_counter_state(counter, state="break", reason="lunch", acting_user=staff)
    with translation.override("es"):
        with pytest.raises(CounterNotOpen, match=r"^Counter 1 está en la pausa del almuerzo; ábralo"):
            do_call_next(queue, counter=counter, acting_user=staff)


def test_the_staff_wait_alert_reaches_each_manager_in_their_own_language(location, queue, manager):
    """One crossing, one message per manager, each in the manager's language (their
    staff preference; none: the location's default)."""
    from datetime import timedelta

    from django.utils import timezone

    from queueapp.alerts import jobs
    from queueapp.alerts.models import OutboxMessage
    from tests.conftest import make_user

    manager.email = "bob@example.org"
    manager.save()
    StaffPreference.objects.create(user=manager, language="de")
    make_user("dora", location, "manager", email="dora@example.org")  # no preference
    location.default_language = "es"
    location.save()
    queue.target_wait_minutes = 10
    queue.save()
    do_join(queue)
    with translation.override("en"):  # the worker's own language
        assert jobs.staff_wait_alerts(now=timezone.now() + timedelta(minutes=11)) == 1
        assert translation.get_language() == "en"  # the job leaves it alone
    told = {m.user.username: m for m in OutboxMessage.objects.filter(kind="staff_wait")}
    assert told["bob"].subject == "General: längste Wartezeit über 10 Min."
    assert "(Serviceziel 10 Min.)" in told["bob"].body
    assert told["dora"].subject == "General: espera más larga de 10 min"


@pytest.mark.django_db
def test_the_admins_labels_of_rows_speak_the_readers_language(staff):
    """What the admin shows for a row (its `__str__`) is in the reader's language."""
    from queueapp.alerts.models import StaffPushSubscription

    preference = StaffPreference(user=staff, language="")
    push = StaffPushSubscription(user=staff, address="https://push.example.org/send/abcdef")
    with translation.override("de"):
        assert str(preference) == f"{staff}: Sprache des Browsers"
        assert str(push).startswith(f"Web-Push für {staff} (")
    with translation.override("ar"):
        assert str(preference) == f"{staff}: لغة المتصفح"
        assert str(push).startswith(f"إشعارات الويب لـ {staff} (")
    assert str(StaffPreference(user=staff, language="es")) == f"{staff}: Español"
