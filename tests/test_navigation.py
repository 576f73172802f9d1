"""Pages refuse one way, keep the navigation while refusing, and link only
to pages that would let the user in."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from queueapp.models import Queue, StaffMembership
from tests.conftest import make_queue, make_user

pytestmark = pytest.mark.django_db

NAV = re.compile(r'<nav aria-label="Account">(.*?)</nav>', re.S)


def _nav_links(page: str) -> list[str]:
    nav = NAV.search(page)
    assert nav, "the page has no navigation"
    return re.findall(r'<a href="([^"]+)"', nav.group(1))


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["staff", "manager", "manager with admin", "superuser"])
def test_every_navigation_link_answers_200_for_whoever_sees_it(who, location, counter):
    role = StaffMembership.Role.STAFF if who == "staff" else StaffMembership.Role.MANAGER
    user = make_user("dora", None if who == "superuser" else location, role,
                     is_staff=who in ("manager with admin", "superuser"),
                     is_superuser=who == "superuser")
    client = _client(user)
    links = _nav_links(client.get(reverse("console-home")).text)
    assert reverse("console-home") in links
    for link in links:
        assert client.get(link).status_code == 200, (who, link)
    assert (reverse("stats") in links) == (who != "staff")
    assert (reverse("admin:index") in links) == (who in ("manager with admin", "superuser"))


def test_staff_see_no_statistics_link_and_the_page_refuses_them_with_the_navigation(staff, location):
    client = _client(staff)
    refused = client.get(reverse("stats"))
    assert refused.status_code == 403 and "Only a manager can see statistics." in refused.text
    assert reverse("console-home") in _nav_links(refused.text)
    assert reverse("stats") not in _nav_links(refused.text)


@pytest.mark.parametrize("page", ["console", "live-console", "waitlist", "waitlist-confirm",
                                  "waitlist-capacity", "waitlist-row"])
def test_every_staff_page_refuses_the_same_way(page, location, counter, other_staff, staff):
    waitlist = make_queue(location, "Tables", prefix="T", kind=Queue.Kind.CAPACITY, capacity=4)
    target = counter.pk if page in ("console", "live-console") else waitlist.pk
    url = reverse(page, args=[target])
    method = "post" if page in ("waitlist-confirm", "waitlist-capacity", "waitlist-row") else "get"

    anonymous = getattr(Client(), method)(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))

    elsewhere = getattr(_client(other_staff), method)(url)
    assert elsewhere.status_code == 403 and "not staff at this location" in elsewhere.text
    assert reverse("console-home") in _nav_links(elsewhere.text)

    unknown = getattr(_client(staff), method)(reverse(page, args=[987654]))
    assert unknown.status_code == 404 and "987654 does not exist" in unknown.text
    assert reverse("console-home") in _nav_links(unknown.text)


def test_waitlist_pages_refuse_staff_and_counter_queues_with_the_navigation(staff, location, queue):
    waitlist = make_queue(location, "Tables", prefix="T", kind=Queue.Kind.CAPACITY, capacity=4)
    client = _client(staff)
    not_manager = client.post(reverse("waitlist-capacity", args=[waitlist.pk]), {"capacity": "9"})
    assert not_manager.status_code == 403 and "Only a manager at this location" in not_manager.text
    assert reverse("console-home") in _nav_links(not_manager.text)
    not_a_waitlist = client.get(reverse("waitlist", args=[queue.pk]))
    assert not_a_waitlist.status_code == 404 and "General is not a waitlist." in not_a_waitlist.text
    assert reverse("console-home") in _nav_links(not_a_waitlist.text)
