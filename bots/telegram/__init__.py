"""The Telegram bot (python-telegram-bot): links in, progress edits and files out, through core.jobs.service only."""
