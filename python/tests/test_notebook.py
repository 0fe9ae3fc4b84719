"""The notebook tour runs headless from top to bottom, its slider cell included."""

import pathlib

import nbclient
import nbformat

TOUR = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "tour.ipynb"


def test_the_tour_executes_with_its_slider(tmp_path):
    nb = nbformat.read(TOUR, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "committed without outputs"
    # The kernel runs in a scratch folder, so that it imports the installed package.
    resources = {"metadata": {"path": str(tmp_path)}}
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources=resources).execute()
    slider = next(c for c in nb.cells if c.cell_type == "code" and "widgets.interact" in c.source)
    kinds = {k for o in slider.outputs for k in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in kinds, kinds
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "fitted slope 2.0" in printed
    assert "rose [0] (the argmax alone)" in printed
    assert "holds on" in printed
