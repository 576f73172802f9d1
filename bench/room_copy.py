"""Benchmark: the waiting room's per-arrival copy of its cached room (issue 13).

    .venv/bin/python bench/room_copy.py [--copies 5000] [--rounds 3]

`services.rooms.room_for_arrival` hands each arrival its own copy of the
cached room with its queue and location (an arrival sets its queue's
counters and its room's next slot on it). Prints the CPU time per copy of
`_own_copy` beside `copy.deepcopy` of the same instances (the baseline, what
it replaced), interleaved, per round. In process, no database.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import django

    django.setup()
    from queueapp.models import Location, Queue, WaitingRoom
    from queueapp.services.rooms import _own_copy

    location = Location(pk=1, name="Arena", slug="arena")
    queue = Queue(pk=2, location=location, name="Concert", slug="concert", prefix="W", kind="capacity",
                  capacity=50, batch_size=50)
    room = WaitingRoom(pk=3, queue=queue, slug="concert", target_url="https://shop.example.com/",
                       admit_per_minute=600, recent_admissions=[1.0] * 10)
    queue._state.fields_cache["waiting_room"] = room  # as select_related leaves it
    for n in range(1, args.rounds + 1):
        figures = []
        for label, make in (("copy.deepcopy (baseline)", lambda: copy.deepcopy(room)),
                            ("_own_copy", lambda: _own_copy(room))):
            started = time.process_time()
            for _ in range(args.copies):
                make()
            figures.append(f"{label} {(time.process_time() - started) / args.copies * 1e6:.1f} µs")
        print(f"round {n}: CPU per copy: " + "; ".join(figures))


if __name__ == "__main__":
    main()
