"""Alerts and webhooks through a durable outbox (issue 12).

- `models`: contacts (who asked to be told, and how), per-queue rules, webhook
  endpoints, the outbox rows and their attempts.
- `decide`: called by `record_event` inside the action's transaction; writes
  the outbox rows that the event makes due, in the same commit.
- `delivery`: the worker's side: claim due rows (SKIP LOCKED / IMMEDIATE),
  drop those no longer true, send, record the attempt, back off or finish.
- `senders`, `sms`, `push`, `webhooks`: one sender per channel.
- `contacts`: opt-in and stop (services), address parsing.
- `jobs`: the periodic jobs (delivery loop, staff wait alerts, failing
  endpoints, retention).
"""
