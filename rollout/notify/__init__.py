"""Webhook notifications: the Events the reconciler posts (kube/events.py) that a team
cares about are also POSTed to webhooks named by spec.notifications or by the controller-wide
ConfigMap.

Flow: reconciler posts an Event -> `Notifier.notify` (delivery.py) maps its reason to a trigger
(messages.py), builds the body and puts it on a bounded queue, never waiting -> a background
worker takes it, finds the targets that want the trigger (targets.py: the Rollout's own, and
the ConfigMap's read with a short TTL), reads each URL from its Secret and POSTs, retrying with
backoff. A reconcile never waits for, or fails because of, a webhook."""
