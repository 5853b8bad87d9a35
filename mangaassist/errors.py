"""The one exception type a user sees without a traceback."""


class UserError(Exception):
    """A problem with the user's input (a file, a label, a config) that they can fix.

    Entry points print ``str(error)`` and exit with status 2; the message must name the
    problem (file, line, class or key) and the fix.
    """
