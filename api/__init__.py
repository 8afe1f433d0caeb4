"""The command-center API: ``examwatch api serve``. See api.app for its routes."""
