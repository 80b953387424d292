"""websocket.png: latency and the error rates of a WebSocket run against the connections open."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("chatswarm")

PLOT_FILE = "websocket.png"

PANELS = (
    ("mean latency (ms)", "mean_ms"),
    ("max latency (ms)", "max_ms"),
    ("error rate", "error_rate"),
    ("client error rate", "client_error_rate"),
    ("server error rate", "server_error_rate"),
    ("unexpected error rate", "unexpected_error_rate"),
)


def write_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Draw latency and the error rates against open connections into ``path``; None when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    connections = [row["connections"] for row in rows]
    figure, axes = pyplot.subplots(2, 3, figsize=(13, 7), sharex=True)
    try:
        for axis, (title, key) in zip(axes.flat, PANELS, strict=True):
            if key.endswith("_ms"):
                for series in ("reply", "fanout"):
                    values = [row[f"{series}_{key}"] for row in rows]
                    if any(value is not None for value in values):
                        axis.plot(connections, _gaps(values), marker="o", markersize=3, label=series)
                if axis.lines:
                    axis.legend(fontsize="small")
            else:
                axis.plot(connections, _gaps([row[key] for row in rows]), marker="o", markersize=3, color="tab:red")
                axis.set_ylim(bottom=0)
            axis.set_title(title)
            axis.grid(alpha=0.3)
        for axis in axes[1]:
            axis.set_xlabel("open connections")
        figure.suptitle("WebSocket latency and errors vs connections")
        figure.tight_layout()
        figure.savefig(path, dpi=80)
    except Exception as error:  # a plotting problem must not cost the run its summary
        logger.warning("websocket.png not written: %s", error)
        return None
    finally:
        pyplot.close(figure)
    return path


def _gaps(values: list[float | None]) -> list[float]:
    return [float("nan") if value is None else value for value in values]
