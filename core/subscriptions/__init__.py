"""Subscriptions: channels and playlists followed into a chat, a Discord channel or an API key."""
