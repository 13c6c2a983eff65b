"""The one exception type for mistakes a user can fix: the CLI prints its message as one line."""


class UserError(Exception):
    """Bad input or a missing prerequisite; the message says what is wrong and what to do."""
