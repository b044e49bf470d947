"""Alerts: who is told what, when, and through which channel.

``rules`` decides (pure, with a clock passed in); ``outbox`` keeps each
message durable until ``delivery`` has sent it through a ``channels`` one;
``maintenance`` says when alerts are held; ``service`` runs it all in the
monitor process that holds the store's writer lead.
"""
