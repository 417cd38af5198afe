"""The peer libraries, measured beside this suite's engines on the same data, split and metrics: each is one
registry entry (`Launcher.PYTHON`) whose fit runs in the shared phases (recommender/tensor/phases.py).

Their objectives differ from MLlib's, which the suite's engines share; each module's docstring says how, and
`fair.py` holds the settings that bring them as close as each library allows.
"""
