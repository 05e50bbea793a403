"""The base of every error whose message is meant for the person running whymoji."""


class WhymojiError(Exception):
    """A problem the user can act on; the CLI prints its message as one line, no traceback."""

    def lines(self) -> list[str]:
        """One line per problem (the CLI prints each as ``whymoji: error: ...``)."""
        return [str(self)]
