"""Notifications: typed events routed from the outbox to notifiers."""
