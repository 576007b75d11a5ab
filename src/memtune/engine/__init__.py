"""What a host should be: the knob catalog and the planner that turns facts and policy layers into a
``DesiredState``."""
