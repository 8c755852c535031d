"""The controller: kopf handlers that turn watch events into reconciles, and the reconcile itself
(observe -> engine decides -> apply actions -> write status -> post Events)."""
