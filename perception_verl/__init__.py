"""perception-verl: GRPO with a visual perception reward for verl (Perception-R1, arXiv 2506.07218).

Layers, top to bottom; a module imports only from its own layer or below (``lint-imports`` checks
the contract in ``pyproject.toml``; docs/architecture.md walks through them):

1. command dispatcher: ``cli``, ``__main__``;
2. entry points: ``main_ppo`` (verl's trainer entry), ``plugin`` (verl's plugin hook), ``score``,
   ``judge_flags``, ``launch``, ``evaluation``, ``analysis``, ``annotate``;
3. verl integration: ``integration`` (the reward manager, step metrics, group-consistent GRPO);
4. verl's private edges: ``verl_compat``;
5. reward core: ``scorer``, then ``config`` and ``data`` (annotation parsing, row schema), then ``rewards``;
6. judge: ``judge``;
7. client: ``client`` (``JudgeEndpoint``, the chat client);
8. base: ``errors``, ``atomic``, ``jsonl``, ``argparsing``, ``workers``.
"""

__version__ = "0.1.0"
