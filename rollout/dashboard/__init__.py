"""`rollout dashboard`: a local web server showing Rollouts live, with the CLI's actions.

Flow: watching.py lists and watches Rollouts, ReplicaSets and Events with the user's own
credentials (the controller's Reflector) and wakes the pages; pages.py reads what a page shows
through the CLI's reading code (rollout/cli/view.py); actions.py runs the CLI's commands
(rollout/cli/ops.py); server.py serves the page (static/, plain JS and SVG) and pushes updates
as server-sent events."""
