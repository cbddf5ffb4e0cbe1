"""Board profile data files (one TOML file per board); read with ``neuroplast.boards.load_profile``."""

__all__: list[str] = []
