"""The one exception the engine raises for inputs it cannot certify."""


class EngineError(ValueError):
    """Inputs the engine refuses: unreadable files, empty tables, mismatched columns, a missing target.

    The message is a plain sentence meant for the provider who submitted the data.
    """
