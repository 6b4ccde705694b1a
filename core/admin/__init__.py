"""The operator's view and controls (issue 24 item 4): bans, per-person quotas, figures and the queue, kept in
the database so every process (web, worker, bots; embedded or on PostgreSQL) sees the same at once."""
