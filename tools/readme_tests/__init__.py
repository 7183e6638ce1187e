"""Every week's README run as a learner would, step by step (see tools/readme_check.py)."""
