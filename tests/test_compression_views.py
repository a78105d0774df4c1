"""Lab 06's plots draw what they are given (headless, Agg) and return the figure."""

import matplotlib

matplotlib.use("Agg")

from mlscale_lab.complexity import compression as C  # noqa: E402
from mlscale_lab.views import compression as V  # noqa: E402


def test_every_plot_returns_its_figure():
    import matplotlib.pyplot as plt

    figs = [
        V.plot_quantized_latency({"fp32": {1: 0.2, 256: 5.0}, "int8": {1: 0.1, 256: 2.0}}),
        V.plot_bits_accuracy((1, 2), {1: [90.0, 91.0], 2: [97.0, 97.5]}, [97.6, 97.8],
                             {"0": {1: 95.0, 2: 97.0}}),
        V.plot_distillation({"all": {"from labels": [96.0, 97.0], "distilled": [97.0, 97.2]}}),
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
