"""Scenario `swarm`: survey drones that gossip hazards peer to peer (no hub on the hot path)."""
