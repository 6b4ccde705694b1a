"""The `mediabot` command: the composition root that wires core, worker, web and bots together."""


def _load_current_ytdlp() -> None:
    """Put DATA_DIR/ytdlp's current version first on sys.path (core.ytdlp.versions). It has to happen here,
    when the package is first imported: mediabot.cli imports the downloader, and with it yt_dlp, at once."""
    from core.config import SettingsError, load_settings
    from core.ytdlp.versions import activate

    try:
        settings = load_settings()
    except SettingsError:
        return  # main() says what is wrong with them
    activate(settings.data_dir)


_load_current_ytdlp()
