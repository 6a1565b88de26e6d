"""metrics.csv (one row per optimizer step) and loss.png (raw and smoothed loss curves).

On resume, rows past the checkpoint's step (written by the run that was killed) are dropped, so the
file always describes exactly the steps whose weights survived.
"""
import csv
import os
from pathlib import Path

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

    def append(self, step: int, logs: dict) -> None:
        row = {"step": step, **{k: _fmt(logs.get(k, 0.0)) for k in COLUMNS[1:]}}
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, COLUMNS).writerow(row)

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
            values = [float(r[key]) for r in rows]
            if not any(values):
                continue
            ax.plot(steps, values, color=color, alpha=0.3, linewidth=0.8)
            ax.plot(steps, smooth(values, smoothing), color=color, linewidth=2, label=f"{key} (smoothed)")
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
    return repr(float(value))
