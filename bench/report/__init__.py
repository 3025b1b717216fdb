"""Reports: pandas tables, seaborn figures and a claims verdict, rendered to markdown.

Modules: ``tables`` (aggregate records, ratios, formatting), ``figures`` (PNG figures),
``claims`` (published claims vs measured, verdict by code), ``markdown`` (the report),
``compare`` (regression gate between two result sets), ``cli`` (the subcommands).
"""
