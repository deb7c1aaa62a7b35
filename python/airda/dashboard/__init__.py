"""A live local web dashboard of the studies in a storage (``airda dashboard --storage URL``).

Pages: the studies (directions, counts by state, best value, last update) and, for each study,
the history (best so far), parallel coordinates, slice and contour plots, hyperparameter
importance, intermediate values and pruned runs, the Pareto front (2-3 objectives), a trial
table with filters and CSV export, a table of code variants (trials with ``speedup`` or
``code`` attributes), for architecture searches the cell graph of any trial (an SVG drawn on
the server for NAS-Bench-201 cells, a table of choices otherwise) and the accuracy/cost front,
and the ``airda.eval`` report recorded on a study (comparisons and the held-out re-evaluation:
verdicts, intervals, p-values). A page polls ``/api/studies/NAME/since?seq=N`` every 2 s, gets
only the trials written since, and redraws.

The storage is only read, opened with ``get_storage(url, read_only=True)``: an SQLite file
through ``mode=ro`` connections (a reader never blocks a writer in WAL mode), PostgreSQL in
sessions whose transactions are read-only on the server. Plots are drawn by
:mod:`airda.viz` on the server, from a sample above 5,000 trials. Every asset ships in the
package; plotly.js comes from the installed plotly package (``pip install 'airda-lab[viz]'``).

Example:
    >>> import threading, json, urllib.request, tempfile, os
    >>> import airda
    >>> from airda.space import Float
    >>> from airda.dashboard import DashboardServer
    >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
    >>> airda.create_study(name="demo", space={"x": Float(0, 1)}, storage=path).optimize(
    ...     lambda t: t["x"], n_trials=3)
    >>> server = DashboardServer(path, port=0)
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
    >>> with urllib.request.urlopen(server.url + "api/studies") as r:
    ...     [(s["name"], s["n_trials"]) for s in json.load(r)["studies"]]
    [('demo', 3)]
    >>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

from airda.dashboard._server import PLOTS, DashboardServer, is_loopback
from airda.dashboard._source import ReadOnlySource, StudyCache, open_read_only

__all__ = [
    "PLOTS",
    "DashboardServer",
    "ReadOnlySource",
    "StudyCache",
    "is_loopback",
    "open_read_only",
]
