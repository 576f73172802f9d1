"""Following transfers: one function (`selectors.transfer_chains`) for the
pages, the API, the export and the live screens' batched lookups."""

import pytest

from queueapp.live.reads import ticket_row_views
from queueapp.models import Ticket
from queueapp.personal_data import person_tickets
from queueapp.selectors import follow_transfers, transfer_chain, transfer_chains, transferred_from
from queueapp.services import do_call_next, do_join, do_transfer
from tests.conftest import make_counter, make_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def moved_twice(location, queue, counter):
    """A patient moved General -> Lab -> X-ray: three tickets, one person."""
    lab, xray = make_queue(location, "Lab", "L"), make_queue(location, "X-ray", "X")
    first = do_join(queue)
    do_call_next(counter=counter)
    second = do_transfer(first, to_queue=lab)
    make_counter(location, "Lab desk", queues=[lab])
    do_call_next(counter=make_counter(location, "Lab 2", queues=[lab]))
    third = do_transfer(Ticket.objects.get(pk=second.pk), to_queue=xray)
    return [Ticket.objects.get(pk=t.pk) for t in (first, second, third)]


def test_an_old_token_leads_to_the_ticket_its_holder_now_has(moved_twice):
    first, second, third = moved_twice
    assert [t.pk for t in transfer_chain(first)] == [first.pk, second.pk, third.pk]
    assert follow_transfers(first).pk == follow_transfers(second).pk == third.pk
    assert [t.pk for t in transferred_from(third)] == [second.pk, first.pk]
    assert [t.pk for t in person_tickets(second)] == [first.pk, second.pk, third.pk]


def test_the_batched_form_follows_every_ticket_in_one_query_per_hop(moved_twice, queue,
                                                                    django_assert_num_queries):
    first, second, third = moved_twice
    unmoved = do_join(queue)
    with django_assert_num_queries(2):  # two hops, however many tickets
        chains = transfer_chains([first, second, third, unmoved])
    assert {pk: [t.pk for t in chain] for pk, chain in chains.items()} == {
        first.pk: [first.pk, second.pk, third.pk], second.pk: [second.pk, third.pk],
        third.pk: [third.pk], unmoved.pk: [unmoved.pk]}


def test_live_screens_look_up_old_tokens_through_the_same_chains(moved_twice, queue,
                                                                 django_assert_num_queries):
    first, second, third = moved_twice
    unmoved = do_join(queue)
    tokens = [first.token, second.token, third.token, unmoved.token, "no-such-token"]
    with django_assert_num_queries(3):  # the tokens, then two hops
        views = ticket_row_views(tokens)
    assert {t: v and v.ticket_id for t, v in views.items()} == {
        first.token: third.pk, second.token: third.pk, third.token: third.pk,
        unmoved.token: unmoved.pk, "no-such-token": None}
    assert views[first.token].display_number == third.display_number
    assert views[first.token].followed_from == first.token and views[third.token].followed_from is None
