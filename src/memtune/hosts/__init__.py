"""Many hosts at once: saved facts files, inventory variables, and planning or auditing them in
worker processes."""
