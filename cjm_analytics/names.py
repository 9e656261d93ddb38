"""The names the pipeline gives to things that are not in the data, spelled once (docs/definitions.md).

No imports of the package, so every layer may read it, the report included. SQL never spells them:
sql_steps.run_sql binds SQL_NAMES to every step that names one (`coalesce(first_channel, $no_segment)`).
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Entity:
    """What a journey is the journey of, as the pages say it (config `entity`): customers, or cases, tickets.
    Human-facing text only: tables and columns keep their names (customers, customer_key) whatever the word."""

    singular: str = "customer"
    plural: str = "customers"

    def __post_init__(self) -> None:
        # The pages put the words into HTML and plotly text as they are: no character that either would read.
        # (The config allows letters, spaces, '-' and apostrophes only.)
        if any(c in word for word in (self.singular, self.plural) for c in '<>&"\\'):
            raise ValueError(f"not a plain word: {self.singular!r}, {self.plural!r}")

    # Capitalised, for the start of a label or a sentence ("Cases"); the rest of the word as written (SLA case).
    @property
    def Singular(self) -> str:
        return self.singular[:1].upper() + self.singular[1:]

    @property
    def Plural(self) -> str:
        return self.plural[:1].upper() + self.plural[1:]

    def say(self, template: str) -> str:
        """A fixed text with {singular}, {plural}, {Singular}, {Plural} in it, in this entity's words (never a
        text from the data: its braces would be read as placeholders)."""
        return template.format(singular=self.singular, plural=self.plural, Singular=self.Singular,
                               Plural=self.Plural)


CUSTOMERS = Entity()
