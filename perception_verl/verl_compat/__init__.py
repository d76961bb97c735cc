"""verl's private edges, in one place: what this package relies on that verl 0.9.1 does not offer as API.

Every module elsewhere uses verl's public surface only (``RewardManagerBase`` and its registry,
``DataProto``, ``run_ppo``, the v1 trainer's public ``step``/``get_reward_handles``). What follows has
no public alternative in verl 0.9.1; each piece names the verl lines it follows, and the tests that
pin them (``tests/test_integration_main_ppo.py``, ``tests/test_integration_group_sampling.py``) fail
when verl changes them. The pinned release is :data:`~perception_verl.verl_compat.entry.SUPPORTED_VERL`.

- :mod:`~perception_verl.verl_compat.entry`: verl's ``TaskRunnerV1.run`` body
  (``verl/trainer/main_ppo.py:103-165``, pinned by hash) with our trainer class, its agent loop manager
  choice (``main_ppo.py:111-131``), the legacy ``main_ppo_v0.TaskRunner``, and ``main``'s start-up.
- :mod:`~perception_verl.verl_compat.transfer_queue`: TransferQueue reads and writes of a v1 batch
  (``KVBatchMeta``: ``keys``, ``partition_id``, ``tags``), the ``{uid}_{session_id}_{index}`` sample keys
  (``verl/trainer/ppo/v1/agent_loop_tq.py:178-193``), ``rm_scores`` on the last response token written
  back as verl's colocated reward step does (``trainer_base.py:1529``).
- :mod:`~perception_verl.verl_compat.trainer`: the v1 trainer's ``self.replay_buffer``
  (``verl/trainer/ppo/v1/trainer_base.py:131``), sampled in ``step`` (``:567``) before the private
  ``_compute_advantage`` (``:1743``) reads ``rm_scores``.
"""
