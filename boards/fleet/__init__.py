"""Fleets: SSH deploy / status / collect / staged rollout (:mod:`.ssh`), integer-quantized
updates (:mod:`.wire`), mergers and learners of on-device learning (:mod:`.merge`), and
their Flower strategy and client (:mod:`.flower`, needs ``flwr``). See docs/fleet.md.

Importing this package imports none of them (Flower stays optional)."""

__all__: list[str] = []
