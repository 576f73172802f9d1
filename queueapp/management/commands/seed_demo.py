"""Load demo data idempotently; with --urls, print where to look and how to log in."""

from datetime import time, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from queueapp.management.demo_history import bookings_today, play_history
from queueapp.models import BookingSchedule, Counter, Location, OpeningHours, Priority, Queue, StaffMembership, Ticket
from queueapp.services import do_join

DEMO_USERS = [
    # username, password, role, superuser
    ("staff", "staff-demo", StaffMembership.Role.STAFF, False),
    ("manager", "manager-demo", StaffMembership.Role.MANAGER, False),
    ("admin", "admin-demo", StaffMembership.Role.MANAGER, True),
]


class Command(BaseCommand):
    help = "Create the demo clinic (queues, counters, users, a few tickets). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--urls", action="store_true", help="Only print the URLs and logins.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--history-days", type=int, default=7,
                            help="Days of past history to play before today (default 7).")

    def handle(self, *args, urls=False, host="127.0.0.1", port="8000", history_days=7, **options):
        if urls:
            self._print_urls(f"http://{host}:{port}")
            return
        with transaction.atomic():
            location = self._setup()
        if not Ticket.objects.filter(queue__location=location).exists():
            # A past week and today so far, played through the services; bookings ahead.
            served = play_history(location, days=history_days)
            self.stdout.write(f"Demo history: {served} tickets served over the past week and today; "
                              f"{bookings_today(location)} bookings today.")
            general = location.queues.get(slug="general")
            for priority in (Priority.NORMAL, Priority.NORMAL, Priority.HIGH, Priority.NORMAL, Priority.URGENT):
                do_join(general, priority=priority)
            do_join(location.queues.get(slug="pharmacy"))
            self.stdout.write("Demo tickets created.")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _setup(self) -> Location:
        location, _ = Location.objects.get_or_create(
            slug="riverside", defaults={"name": "Riverside Clinic", "timezone": "Europe/London"})
        queues = {}
        for slug, name, prefix in [("general", "General practice", "A"),
                                   ("pharmacy", "Pharmacy", "P"), ("lab", "Blood tests", "L")]:
            queues[slug], _ = Queue.objects.get_or_create(
                location=location, slug=slug, defaults={"name": name, "prefix": prefix})
        Queue.objects.get_or_create(
            location=location, slug="train-101", defaults={
                "name": "Train 101 (tomorrow)", "prefix": "T", "kind": Queue.Kind.CAPACITY,
                "capacity": 20, "service_date": (timezone.now() + timedelta(days=1)).date(),
                "offer_seconds": 15 * 60})
        self._schedules(queues)
        for name, served in [("Counter 1", ["general"]), ("Counter 2", ["general", "pharmacy"]),
                             ("Room 3", ["lab", "general"])]:
            counter, created = Counter.objects.get_or_create(location=location, name=name)
            if created:
                counter.queues.set([queues[s] for s in served])
        User = get_user_model()
        for username, password, role, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": superuser or role == "manager",
                                             "is_superuser": superuser})
            if created:
                user.set_password(password)
                user.save()
            StaffMembership.objects.get_or_create(user=user, location=location, defaults={"role": role})
        return location

    def _schedules(self, queues: dict) -> None:
        """General practice takes appointments every day (15 min, 2 per slot), blood tests
        in the mornings (10 min, 1 per slot)."""
        for slug, minutes, per_slot, stretches in [
                ("general", 15, 2, [(time(9), time(12)), (time(13), time(17))]),
                ("lab", 10, 1, [(time(9), time(11, 30))])]:
            schedule, created = BookingSchedule.objects.get_or_create(
                queue=queues[slug], defaults={"slot_minutes": minutes, "per_slot": per_slot})
            if not created:
                continue
            for weekday in range(7):
                hours = stretches if weekday < 5 else [(time(10), time(13))]
                for opens, closes in hours:
                    OpeningHours.objects.create(schedule=schedule, weekday=weekday, opens=opens, closes=closes)

    def _train_id(self) -> int | str:
        train = Queue.objects.filter(location__slug="riverside", slug="train-101").first()
        return train.pk if train else "<queue id>"

    def _print_urls(self, base: str) -> None:
        lines = [
            "",
            "Queue management demo is starting on the embedded default (SQLite, in-memory layer).",
            f"  Start page       {base}/",
            f"  Staff console    {base}/console/",
            f"  Kiosk            {base}/kiosk/riverside/",
            f"  Join online      {base}/join/riverside/",
            f"  Book online      {base}/book/riverside/",
            f"  Kiosk check-in   {base}/kiosk/riverside/check-in/",
            f"  Day's bookings   {base}/console/bookings/riverside/",
            f"  Lobby display    {base}/display/riverside/",
            f"  Train waitlist   {base}/waitlist/{self._train_id()}/",
            f"  Statistics       {base}/stats/",
            f"  Admin            {base}/admin/",
            f"  API docs         {base}/api/docs",
            "  Logins:  " + ",  ".join(f"{u} / {p}" for u, p, _, _ in DEMO_USERS),
            "",
        ]
        self.stdout.write("\n".join(lines))
