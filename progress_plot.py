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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.add_subplot()
    columns = list(zip(*rows)) or [()] * (len(TERMS) + 1)
    for name, values in zip(TERMS, columns[1:]):
        if any(value > 0 for value in values):
            axes.plot(columns[0], values, label=LABELS[name])
    for boundary in boundaries:
        axes.axvline(boundary, color='grey', linestyle='--', linewidth=1)
    axes.set_yscale('log', nonpositive='mask')
    axes.set_xlabel('iteration')
    axes.set_ylabel('weighted loss')
    axes.grid(True, which='major', alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc='upper right')
    fig.tight_layout()
    return fig


def save(fig, file):
    """Writes the figure as a PNG of SIZE pixels to an open binary file."""
    fig.savefig(file, format='png', dpi=DPI)
