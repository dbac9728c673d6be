"""The loss plot of a run: its weighted loss terms and their total against the iteration (matplotlib, Agg)."""

SIZE = (800, 450)  # the PNG's width and height in pixels: legible beside a 512 px result
DPI = 100
TERMS = ('content', 'style', 'tv', 'total')  # the progress CSV's loss columns, in its order
LABELS = {'content': 'content (alpha L_content)', 'style': 'style (beta L_style)', 'tv': 'total variation',
          'total': 'total'}


def figure(rows, boundaries=()):
    """A matplotlib Figure (Agg canvas, no pyplot state) of the losses on a log scale.

    rows: one (iteration, content, style, tv, total) per step, the iteration counted over all stages;
    a term that is 0 throughout (the TV term by default) is left out. boundaries: the iterations at which a
    later stage of --scales starts, each marked by a dashed vertical line.
    """
    fig, axes = _log_axes('weighted loss')
    columns = list(zip(*rows)) or [()] * (len(TERMS) + 1)
    for name, values in zip(TERMS, columns[1:]):
        if any(value > 0 for value in values):
            axes.plot(columns[0], values, label=LABELS[name])
    for boundary in boundaries:
        axes.axvline(boundary, color='grey', linestyle='--', linewidth=1)
    return _finished(fig, axes)


def totals_figure(runs):
    """A Figure of several runs' total losses on a log scale, one line per run (a reproduce.py sheet's cells).

    runs: label -> rows of (iteration, total)."""
    fig, axes = _log_axes('total loss')
    for label, rows in runs.items():
        iterations, totals = zip(*rows)
        axes.plot(iterations, totals, label=label)
    return _finished(fig, axes)


def _log_axes(ylabel):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.add_subplot()
    axes.set_yscale('log', nonpositive='mask')
    axes.set_xlabel('iteration')
    axes.set_ylabel(ylabel)
    axes.grid(True, which='major', alpha=0.3)
    return fig, axes


def _finished(fig, axes):
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc='upper right', fontsize='small')
    fig.tight_layout()
    return fig


def save(fig, file):
    """Writes the figure as a PNG of SIZE pixels to an open binary file."""
    fig.savefig(file, format='png', dpi=DPI)
