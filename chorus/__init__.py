"""The ``chorus`` command line and the demo path that ties the components together."""

__all__: list[str] = []
