"""Monitoring: drift, realized performance, pyramid, feedback and effects, as one report.

Where things are:

- ``monitoring.run``: ``run_monitor`` and ``MonitorResult``, the run that writes the report;
- ``monitoring.figures``: pure functions computing the figures (PSI, performance, pyramid,
  migrations, feedback counts, ranked against control);
- ``monitoring.effects``: pure functions of outcome rows: offered against holdout, the
  ranking's lift over the control group, Qini curves;
- ``monitoring.alerts``: ``Thresholds`` and the table of alert rules;
- ``monitoring.readers``: what the champions' MLflow runs and the decision log hold;
- ``monitoring.sections``: each section's figures and plots from the dataset and readers;
- ``monitoring.plots``: the matplotlib plots, as base64 PNG;
- ``monitoring.report``: the HTML, rendered through ``templates/report.html.j2``.

Importing this package imports nothing else (the figures stay cheap to import for notebooks).
Nothing here reads ``training``: what monitoring knows of models comes from MLflow.
"""
