"""Helpers shared by the tests: seeded stores, services, fake providers, receivers, waits."""
