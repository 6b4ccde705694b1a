"""The Discord bot: `/download`, the "Download media" message command, `/cancel` and a Cancel button, with
live progress in the command's reply and the file (or a link) delivered there when it is done."""
