"""Routers: one small interface, one module per provider (gatewayapi.py, istio.py).

A router is pure: it reads a route document and returns the document with the wanted traffic
applied, reads back what a document applies, and reports the route's own status. The controller
fetches the route, calls the router, and writes the difference as a JSON patch."""
