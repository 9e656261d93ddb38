"""The stage-transition graph as a networkx DiGraph, from the stage_funnel and stage_transitions marts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import networkx as nx

from cjm_analytics.config import PSEUDO_STAGES


def _present(record: dict[str, Any]) -> dict[str, Any]:
    # GraphML has no null: an absent attribute is how it says "not defined" (e.g. drop-off of the last stage).
    return {k: v for k, v in record.items() if v is not None}


def stage_graph(con: duckdb.DuckDBPyConnection) -> nx.DiGraph:
    """Nodes: the stages with their funnel figures, plus (start) and (end); edges: the transition figures."""
    graph: nx.DiGraph = nx.DiGraph()
    funnel = con.execute("SELECT * FROM stage_funnel ORDER BY stage_order").fetchdf()
    last_order = int(funnel["stage_order"].max()) + 1 if len(funnel) else 1
    graph.add_node(PSEUDO_STAGES[0], stage_order=0, pseudo=True)
    for record in funnel.to_dict("records"):
        stage = str(record.pop("stage"))
        graph.add_node(stage, pseudo=False, **_present({str(k): _plain(v) for k, v in record.items()}))
    graph.add_node(PSEUDO_STAGES[1], stage_order=last_order, pseudo=True)
    edges = con.execute("SELECT * FROM stage_transitions ORDER BY from_order, to_order").fetchdf()
    for record in edges.to_dict("records"):
        source, target = str(record.pop("from_stage")), str(record.pop("to_stage"))
        graph.add_edge(source, target, **_present({str(k): _plain(v) for k, v in record.items()}))
    return graph


def _plain(value: Any) -> Any:
    """numpy scalars and NaN -> plain Python values GraphML can write."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def write_graphml(graph: nx.DiGraph, path: Path) -> Path:
    """Write the graph for Gephi, yEd or networkx.read_graphml."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(graph, path)
    return path
