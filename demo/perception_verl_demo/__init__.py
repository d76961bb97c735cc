"""Demo and test material shared by the tests, the benchmarks and the CPU smoke run (not the product).

Sample geometry problems and responses (:mod:`.samples`), a tiny tokenizer (:mod:`.tiny_tokenizer`),
rollout-shaped tensors (:mod:`.rollout`), the CPU smoke run (:mod:`.smoke`) and the tiny GRPO twin's
inputs (:mod:`.twin`). Installed editable beside the plugin by ``scripts/setup.sh`` and
``scripts/setup_engine.sh``.
"""
