"""Lab 06's plots draw what they are given (headless, Agg) and return the figure."""

import matplotlib

matplotlib.use("Agg")

from mlscale_lab.complexity import compression as C  # noqa: E402
from mlscale_lab.evidence import Interval  # noqa: E402
from mlscale_lab.views import compression as V  # noqa: E402


def test_every_plot_returns_its_figure():
    import matplotlib.pyplot as plt

    figs = [
        V.plot_bits_accuracy({"k-means": {2: [8.0, 9.0, 7.5], 4: [0.2, 0.1, 0.3]},
                              "uniform": {2: [30.0, 35.0, 40.0], 4: [0.5, 0.4, 0.9]}}),
        V.plot_roofline({"fp32": [(1e5, Interval(0.05, 0.04, 0.06, 0.95, "t", 9)),
                                  (4e7, Interval(4.0, 3.8, 4.3, 0.95, "t", 9))]},
                        {"fp32": [(1e5, 0.05), (4e7, 4.1)]}),
        V.plot_distillation({"scratch": [78.0, 79.0, 80.0], "hard labels": [82.0, 82.5, 83.0],
                             "distilled": [82.5, 83.0, 83.1]}, teacher=[82.0, 82.6, 82.6]),
        V.plot_pipeline({0: [C.Stage("dense", 1000, 98.0), C.Stage("deep", 20, 97.5)],
                         1: [C.Stage("dense", 1000, 97.0), C.Stage("deep", 22, 97.0)]}),
    ]
    recipes = [C.Recipe("fp32", 4_000_000, 4_000_000, 0.2, 1e4, 98.0),
               C.Recipe("student", 5_000, 5_000, 0.02, 1e6, 96.5)]
    figs.append(V.plot_recipes(recipes, {"phone": recipes[1], "watch": None}))
    labels = [t.get_text() for t in figs[-1].axes[0].get_yticklabels()]
    assert labels == ["fp32 (98.00%)", "student (96.50%)\n<- phone"]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)
    figs[3].savefig("/dev/null", format="png")
    plt.close("all")
