"""The notifier: alarm transitions → duty roster → outbox → SMS (Kannel or Apprise), with escalation and silences."""
