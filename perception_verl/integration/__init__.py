"""verl integration: the perception reward manager, its options, and reward step metrics.

Nothing is imported or registered here; import the submodules you need
(``manager``, ``config``, ``metrics``; ``register`` registers the manager under ``"perception"``).
"""
