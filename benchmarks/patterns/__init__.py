"""Minimal handlers built on the platform's entry-point patterns that no domain uses yet (a signed webhook, a queue
consumer of another domain's events), so `make bench` measures the patterns' cold start before their first real
users arrive (messages, retention). Each names its sample event in `SAMPLE_EVENT`."""
