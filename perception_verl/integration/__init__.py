"""verl integration: the perception reward manager, its options, step metrics, group-consistent GRPO.

Nothing is imported or registered here; import the submodules you need (``manager``, ``config``,
``metrics``, ``step_metrics``, ``group_sampling``; ``register`` registers the manager under
``"perception"``).
"""
