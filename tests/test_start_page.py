"""`/` leads visitors to a location's join page and staff to sign in or to the console."""

import pytest
from django.urls import reverse

from tests.conftest import make_queue

pytestmark = pytest.mark.django_db


def test_start_page_links_each_location_that_takes_tickets_and_staff_sign_in(client, location, queue):
    page = client.get("/")
    assert page.status_code == 200
    text = page.text
    assert f'href="{reverse("join", args=[location.slug])}"' in text and location.name in text
    assert f'href="{reverse("login")}?next={reverse("console-home")}"' in text
    assert "Open the console" not in text


def test_start_page_offers_the_console_to_staff_who_are_signed_in(client, staff, location, queue):
    client.force_login(staff)
    text = client.get("/").text
    assert f'href="{reverse("console-home")}"' in text and "Open the console" in text
    assert "Sign in" not in text


def test_a_location_with_only_waitlists_is_not_offered_for_online_join(client, location):
    make_queue(location, "Seats", "S", kind="capacity", capacity=10)
    assert reverse("join", args=[location.slug]) not in client.get("/").text
