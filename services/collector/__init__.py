"""The collector agent: dials out to a gateway, waits to be registered, then takes work."""
