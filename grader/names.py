"""The names several stages share, defined once: start methods, outcomes, tiers, defaults, property names.

Plain constants, no imports: the CLI, the run and collect stages, scoring,
exports, the pytest plugin and the sandbox all read them from here.
"""

from __future__ import annotations

# The multiprocessing start methods every check runs under (grade --start-method all).
START_METHODS = ("fork", "spawn", "forkserver")

# A hidden test's outcome, as collect reports it and the scorecard writes it.
PASSED, FAILED, ERROR, TIMEOUT, SKIPPED = "passed", "failed", "error", "timeout", "skipped"
OUTCOMES = (PASSED, FAILED, ERROR, TIMEOUT, SKIPPED)

# Isolation tiers, strongest first (grader/isolation.py says what each gives).
NAMESPACES, USER, PROCESS = "namespaces", "user", "process"
TIERS = (NAMESPACES, USER, PROCESS)

# Seconds one sandboxed call may take (--call-timeout), and the whole run (--deadline).
DEFAULT_CALL_TIMEOUT = 10.0
DEFAULT_DEADLINE = 1800.0
# Seconds a hidden test gives a call whose graded code starts several processes: under spawn on a loaded
# machine such a call took 8x its quiet time, and the default is for calls that only compute.
STARTING_CALL_TIMEOUT = 30.0

# The user properties the plugin records on a test report, which collect reads back.
STATUS_PROPERTY = "kata_status"
OUTPUT_PROPERTY = "kata_output"
TIMELINE_PROPERTY = "kata_timeline"
