"""How a host differs from its plan: drift, the baseline of a fleet and what moved, plan-to-plan diffs."""
