"""Keeping yt-dlp current without a rebuild: versioned installs under DATA_DIR/ytdlp, the pointer that says
which one is current, the canary that proves a new one before it is trusted, and the daily check.

Nothing in this package imports yt_dlp: `versions.activate` must be able to run before anything else does.
"""
