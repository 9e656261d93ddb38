"""The names the pipeline gives to things that are not in the data, spelled once (docs/definitions.md).

No imports, so every layer may read it, the report included. SQL never spells them: sql_steps.run_sql binds
SQL_NAMES to every step that names one (`coalesce(first_channel, $no_segment)`).
"""

from __future__ import annotations

# The transition graph's pseudo-stages: where every journey starts and ends.
START = "(start)"
END = "(end)"
# The step Sankey's nodes: paths that ended at the step before, paths that reached the goal (kept for the
# Sankey's "(completed)" node), paths longer than the last step shown, step nodes too small to show.
DROP_OFF = "(drop-off)"
COMPLETED = "(completed)"
CONTINUES = "(continues)"
OTHER = "other"
# The segment of a customer without a value (no first-touch channel, no property value).
NO_SEGMENT = "(none)"
# The absorbing states of the attribution's Markov chain (its start state is START).
CONVERSION = "(conversion)"
NULL_STATE = "(null)"

PSEUDO_STAGES = (START, END)
# Node names the transition graph and the step Sankey use for themselves: no stage may take one.
RESERVED_NODE_NAMES = (*PSEUDO_STAGES, DROP_OFF, COMPLETED, CONTINUES, OTHER)

# The parameter names SQL steps use for them (no step may take a parameter of the same name for anything else).
SQL_NAMES = {
    "start_stage": START,
    "end_stage": END,
    "drop_off": DROP_OFF,
    "completed": COMPLETED,
    "continues": CONTINUES,
    "other_node": OTHER,
    "no_segment": NO_SEGMENT,
    "conversion": CONVERSION,
    "null_state": NULL_STATE,
}
