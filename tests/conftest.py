pytest_plugins = [
    "tests.support.groups",
    "tests.support.s3",
    "tests.support.media_fixtures",
    "tests.support.services",
    "tests.support.servers",
    "tests.fakes.telegram",
    "tests.fakes.discord",
    "tests.fakes.pot_provider",
]
