"""Alert rules, the outbox and e-mail delivery.

- :mod:`netmon.alerts.rules`: the rules of ``policy/alerts.yaml`` and :class:`RuleEngine`, which the
  incident writer calls in the incident's own transaction (``after_batch``).
- :mod:`netmon.alerts.outbox`: alert rows in the store, claimed and marked by the sender.
- :mod:`netmon.alerts.sender`: SMTP settings from the environment, message composition and the
  :class:`AlertSender` task that delivers with retries and back-off.
"""
