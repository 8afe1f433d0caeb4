"""examwatch's domain package: device kinds, payload schemas, topic scheme, inventory and settings.

Every service imports this package; this package imports no service.
"""
