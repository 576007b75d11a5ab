"""What policies say: the policy model, loading YAML with its marks, sandboxed expressions and policy
cases."""
