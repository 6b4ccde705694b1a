"""Parts of one media file: a clip between two times, its chapters as separate files, sponsor segments cut out.

- `sections`: the times a person writes ("1:20-1:45", the API's {"start", "end"}) as a `Section`, checked
  against the media's duration and the duration limit.
- `cut`: a clip (or a soundless animation for Telegram's /gif) cut from a stored file with FFmpeg.
- `chapters`: a file's chapters read with ffprobe, and the file split at them.
- `sponsorblock`: segments from a SponsorBlock API, and what they become for yt-dlp's ModifyChapters
  post-processor; `removal` runs that post-processor (the one module here that imports yt-dlp).

Nothing here is imported by this package's `__init__`, so a front end that only parses sections loads
neither aiohttp's client nor yt-dlp.
"""
