"""The API's request and response models, in families per resource (``XBase``, ``XPublic``, …)."""
