"""Collect visual annotations for a dataset: solve (k samples) -> keep verified -> extract facts.

Example (Geometry3K train split, one SGLang server for each model):

    python data_prep/collect_annotations.py --input hiyouga/geometry3k --split train \\
        --output annotations/geometry3k_train.jsonl \\
        --solver-url http://localhost:30000 --solver-model Qwen/Qwen2.5-VL-72B-Instruct \\
        --extractor-url http://localhost:30001 --extractor-model Qwen/Qwen2.5-32B-Instruct

Rerunning the same command resumes: problems already in the output are skipped. See
``perception_verl.annotate`` for the pipeline and ``--help`` for all options.
"""

import sys

from perception_verl.annotate.cli import main

if __name__ == "__main__":
    sys.exit(main())
