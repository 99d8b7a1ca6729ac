"""Executing and scoring chapters, no physics: parameter specifications and validation
(``params``), the scorecard (``report``), the chapter registry (``registry``) and the
``thermo-nb`` command line (``cli``).  The top layer: nothing else in ``thermo_nb`` imports
it except ``chapters``, which only takes ``pipeline.params`` to declare its specifications.
"""
