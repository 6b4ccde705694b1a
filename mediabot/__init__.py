"""The `mediabot` command: the composition root that wires core, worker, web and bots together."""
