"""Routers: one small interface (base.py), one module per provider (gatewayapi.py, istio.py, ...)
and a registry listing them (registry.py).

A router is pure: it reads a route document and returns the document with the wanted traffic
applied, reads back what a document applies, and reports the route's own status. A provider
(one `trafficRouting.<field>`) declares its resources and capabilities and turns its spec into
bindings (binding.py): routes it edits, objects it owns, objects it pins by revision. A binding
is the one interface the controller and the CLI use: given the API client, it reads its
objects, asks its router, and writes the difference. Nothing here imports the engine: what the
engine reads back (ObservedRoute, ObservedPins) is defined here."""
