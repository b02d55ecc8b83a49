"""Quota-threshold alerts and admin notifications (sensor, notification job, notifier)."""
