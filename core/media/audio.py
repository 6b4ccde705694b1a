"""yt-dlp post-processors for sound files: keep the sound when it already is a type people get, and tag
Ogg files so the site's words win over the file's own.

They are named in the options like yt-dlp's own (`{"key": "KeepOrConvertAudio", ...}`) and built by
`make_postprocessor`, so the options stay one pure function of the settings and the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from yt_dlp.postprocessor import FFmpegExtractAudioPP, FFmpegMetadataPP, get_postprocessor
from yt_dlp.postprocessor.common import PostProcessor

# Sound codecs (as ffprobe names them) already in a file type we hand out, and that type.
KEPT_CODECS = {"mp3": "mp3", "aac": "m4a", "opus": "opus"}
OGG_EXTS = ("opus", "ogg", "oga")


class KeepOrConvertAudioPP(FFmpegExtractAudioPP):
    """yt-dlp's audio extraction, except that with `keep` a sound that already is MP3, AAC or Opus is only
    moved into its own file type (mp3, m4a, opus), never re-encoded; anything else becomes `fallback`."""

    def __init__(
        self,
        downloader: Any = None,
        fallback: str = "m4a",
        keep: bool = True,
        preferredquality: str | None = None,
    ) -> None:
        super().__init__(downloader, preferredcodec=fallback, preferredquality=preferredquality)
        self._fallback = fallback
        self._keep = keep
        self._probed: tuple[str, str | None] | None = None

    def get_audio_codec(self, path: str) -> str | None:
        # Asked here and again by the extraction itself: one ffprobe is enough.
        if self._probed is None or self._probed[0] != path:
            self._probed = (path, super().get_audio_codec(path))
        return self._probed[1]

    @PostProcessor._restrict_to(images=False)
    def run(self, information: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        kept = KEPT_CODECS.get(self.get_audio_codec(information["filepath"]) or "") if self._keep else None
        # yt-dlp's extraction copies the stream when the target is the file's own codec (AAC for m4a).
        self.mapping = kept or self._fallback
        return super().run(information)  # type: ignore[no-any-return]


class AudioTagsPP(FFmpegMetadataPP):
    """yt-dlp's tags (title, artist, date...) that also hold for Ogg files.

    Ogg keeps tags per stream, and FFmpeg's Ogg muxer lets a stream's own tags win over the file-level ones
    yt-dlp sets: an Opus file kept the source file's own title and artist. So for Ogg the stream's tags are
    first lifted to the file level (the ones the site doesn't name survive, as they do in mp3 and m4a) and
    cleared from the stream, where the muxer then writes the merged set."""

    def _get_metadata_opts(self, info: dict[str, Any]) -> Iterator[tuple[str, str]]:
        yield from super()._get_metadata_opts(info)
        if info.get("ext") in OGG_EXTS:
            yield ("-map_metadata:g", "0:s:a:0")
            yield ("-map_metadata:s:a", "-1")


OWN_POSTPROCESSORS: dict[str, type[PostProcessor]] = {
    "KeepOrConvertAudio": KeepOrConvertAudioPP,
    "AudioTags": AudioTagsPP,
}


def make_postprocessor(downloader: Any, definition: dict[str, Any]) -> tuple[PostProcessor, str]:
    """(post-processor, when) from an options entry, ours or yt-dlp's, as YoutubeDL builds its own."""
    spec = dict(definition)
    key = spec.pop("key")
    when = spec.pop("when", "post_process")
    cls = OWN_POSTPROCESSORS.get(key) or get_postprocessor(key)
    return cls(downloader, **spec), when
