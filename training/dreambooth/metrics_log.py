"""metrics.csv (one row per optimizer step) and loss.png (raw and smoothed loss curves).

On resume, rows past the checkpoint's step (written by the run that was killed) are dropped, so the
file always describes exactly the steps whose weights survived. Rows are written in batches on
logging steps (every checkpoint is one); the penalty columns are filled on logging steps only (they
are measured only there) and `loss`, which includes them, is then left empty on the other steps.
"""
import csv
import os
from pathlib import Path

import torch

COLUMNS = ("step", "loss", "diffusion_loss", "prior_loss", "l2sp", "l2", "lr", "seconds")


class MetricsLog:
    def __init__(self, out: Path, resume_step: int = 0):
        self.path = Path(out) / "metrics.csv"
        rows = self.rows() if resume_step else []
        self._rewrite([r for r in rows if int(r["step"]) <= resume_step])

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def _rewrite(self, rows: list[dict]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, rows: list[dict]) -> None:
        """Rows of {column: number or None (left empty)}; one file append for the lot."""
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, COLUMNS).writerows(
                {"step": r["step"], **{k: _fmt(r.get(k)) for k in COLUMNS[1:]}} for r in rows)

    def plot(self, path: Path | None = None, smoothing: float = 0.9) -> Path:
        """loss.png: total and diffusion loss per step, raw (thin) and EMA-smoothed (thick)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path or self.path.with_name("loss.png"))
        rows = self.rows()
        steps = [int(r["step"]) for r in rows]
        fig = Figure(figsize=(7, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for key, color in (("loss", "tab:blue"), ("diffusion_loss", "tab:orange"), ("prior_loss", "tab:green")):
            points = [(s, float(r[key])) for s, r in zip(steps, rows) if r[key]]
            if not any(v for _, v in points):
                continue
            xs, values = [s for s, _ in points], [v for _, v in points]
            ax.plot(xs, values, color=color, alpha=0.3, linewidth=0.8)
            ax.plot(xs, smooth(values, smoothing), color=color, linewidth=2, label=f"{key} (smoothed)")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        tmp = path.with_name(".tmp-" + path.name)
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
        return path


def smooth(values: list[float], weight: float) -> list[float]:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing slider)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def _fmt(value) -> str:
    return "" if value is None else repr(float(value))


class Window:
    """The numbers of the steps since the last logging step, their tensors left on the device.

    Reading a tensor's value waits for the device (a CUDA sync per `.item()`); drain() reads every
    step's numbers of the window at once, averaged over processes by `reduce`.
    """

    def __init__(self):
        self._rows: list[dict] = []

    def add(self, step: int, values: dict) -> None:
        """values: {name: 0-dim tensor, number or None}."""
        self._rows.append({"step": step, **values})

    def drain(self, reduce=None) -> list[dict]:
        rows, self._rows = self._rows, []
        cells = [(i, k) for i, r in enumerate(rows) for k, v in r.items() if isinstance(v, torch.Tensor)]
        if cells:
            device = rows[cells[0][0]][cells[0][1]].device
            stacked = torch.stack([rows[i][k].detach().float().to(device) for i, k in cells])
            for (i, k), value in zip(cells, (reduce(stacked) if reduce else stacked).tolist()):
                rows[i][k] = value
        return rows
