"""Rules files: their schema (``configs``) and loading (``files``), shared by the rules engine and the API."""
